//! `echo_args ARG…`: prints each argument (not argv[0]) on its own stdout line.

fn main() {
    for arg in std::env::args().skip(1) {
        println!("{arg}");
    }
}
