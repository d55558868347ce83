//! `work(name)`: uses the run context. Logs one message at each level
//! (`[trace] trace {name}`, `[debug] debug {name}`, `[info] hello {name}`,
//! `[warn] warn {name}`, `[error] error {name}`), records the metric `loss`
//! as 0.5 at step 1 and 0.25 at step 2, sets the label `owner` to `name`,
//! and returns `token:<len>` with the length in bytes of the secret
//! `TOKEN`, or `token:none` without it. Given the secret, it also reports
//! it carelessly, as the label `token` and in the metric name
//! `seen <value>`, for the host to blank; it never logs it.

use cairn_sdk::{debug, error, info, label, metric, secret, trace, warn};

mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit", "../wit"],
        world: "cairn-test:typed/context-user",
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        generate_all,
    });
}

struct Context;

impl bindings::Guest for Context {
    fn work(name: String) -> String {
        trace!("trace {name}");
        debug!("debug {name}");
        info!("hello {name}");
        warn!("warn {name}");
        error!("error {name}");
        metric("loss", 0.5, Some(1));
        metric("loss", 0.25, Some(2));
        label("owner", &name);
        match secret("TOKEN") {
            Some(token) => {
                // Careless reporting: the host must blank the value.
                label("token", &token);
                metric(&format!("seen {token}"), 1.0, None);
                format!("token:{}", token.len())
            }
            None => "token:none".to_string(),
        }
    }
}

bindings::export!(Context with_types_in bindings);
