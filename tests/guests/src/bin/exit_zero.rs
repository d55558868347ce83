//! `exit_zero`: prints `bye` to stdout, then calls `std::process::exit(0)`
//! explicitly rather than returning from `main`.

fn main() {
    println!("bye");
    std::process::exit(0);
}
