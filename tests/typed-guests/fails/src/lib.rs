//! `check(n)`: `ok(n / 2)` for an even `n`, and for an odd one the error
//! `n must be even, got N`, which fails the job. Logs `[debug] check N`
//! (so the component imports `cairn:task/context`, as typed tasks usually
//! do; one that calls nothing of `cairn:task` does not import it).

use cairn_sdk::debug;

mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit", "../wit"],
        world: "cairn-test:typed/fails",
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        generate_all,
    });
}

struct Fails;

impl bindings::Guest for Fails {
    fn check(n: u32) -> Result<u32, String> {
        debug!("check {n}");
        if n.is_multiple_of(2) {
            Ok(n / 2)
        } else {
            Err(format!("n must be even, got {n}"))
        }
    }
}

bindings::export!(Fails with_types_in bindings);
