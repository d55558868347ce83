//! `escape`: tries to reach outside the sandbox and prints one stdout line per
//! attempt, `<attempt>: denied` or `<attempt>: LEAKED <detail>`. Always exits 0;
//! the host's test asserts that no line contains `LEAKED`.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn report(attempt: &str, leak: Option<String>) {
    match leak {
        Some(detail) => println!("{attempt}: LEAKED {detail}"),
        None => println!("{attempt}: denied"),
    }
}

fn read(path: &str) -> Option<String> {
    let text = fs::read(path).ok()?;
    Some(format!("{} bytes", text.len()))
}

fn main() {
    for path in ["/etc/passwd", "/in/../../etc/passwd", "../etc/passwd"] {
        report(&format!("read {path}"), read(path));
    }

    let root = fs::read_dir("/").ok().and_then(|entries| {
        let names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name != "in" && name != "out")
            .collect();
        (!names.is_empty()).then(|| format!("{names:?}"))
    });
    report("list /", root);

    let vars: Vec<String> = std::env::vars_os()
        .map(|(key, _)| key.to_string_lossy().into_owned())
        .collect();
    report("env vars", (!vars.is_empty()).then(|| format!("{vars:?}")));

    let addr = SocketAddr::from(([127, 0, 0, 1], 80));
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    report("connect 127.0.0.1:80", tcp.ok().map(|_| "connected".into()));

    let write_in = fs::write("/in/x", "x").ok().map(|()| "wrote /in/x".into());
    report("write /in/x", write_in);

    let write_up = fs::write("/out/../x", "x")
        .ok()
        .map(|()| "wrote /out/../x".into());
    report("write /out/../x", write_up);
}
