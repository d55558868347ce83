//! `exit3`: prints `exiting with 3` to stderr and exits with status 3.

fn main() {
    eprintln!("exiting with 3");
    std::process::exit(3);
}
