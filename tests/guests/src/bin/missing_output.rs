//! `missing_output`: exits 0 without writing anything, so the host must report
//! the task's declared output as missing.

fn main() {}
