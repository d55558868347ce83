//! `fail`: prints `about to fail` to stderr and exits with status 1.

fn main() {
    eprintln!("about to fail");
    std::process::exit(1);
}
