//! The `cairn` binary: all logic lives in the library.

fn main() {
    std::process::exit(cairn::main(std::env::args_os()));
}
