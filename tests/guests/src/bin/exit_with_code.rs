//! `exit_with_code`: prints `exiting with 3` to stderr and calls WASI
//! 0.2.12's `wasi:cli/exit.exit-with-code(3)` directly (Rust's std for
//! wasm32-wasip2 exits through `exit(err)`, which carries no code).

wit_bindgen::generate!({
    inline: r#"
        package wasi:cli@0.2.12;
        interface exit {
            exit: func(status: result);
            exit-with-code: func(status-code: u8);
        }
        world guest {
            import exit;
        }
    "#,
    world: "guest",
});

fn main() {
    eprintln!("exiting with 3");
    wasi::cli::exit::exit_with_code(3);
    unreachable!("exit-with-code does not return");
}
