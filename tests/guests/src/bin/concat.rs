//! `concat NAME OUT`: concatenates the list input `/in/NAME/` (files `0`,
//! `1`, … in numeric order; any other naming is an error) into `/out/OUT` and
//! prints the number of parts to stdout.

use std::{env, fs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = env::args().skip(1).collect();
    let [name, out] = args.as_slice() else {
        return Err("usage: concat NAME OUT".into());
    };
    let dir = format!("/in/{name}");
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir)? {
        names.push(
            entry?
                .file_name()
                .into_string()
                .map_err(|n| format!("bad name {n:?}"))?,
        );
    }
    let n = names.len();
    let mut expected: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    names.sort();
    expected.sort();
    if names != expected {
        return Err(format!("{dir} holds {names:?}, not 0..{n}").into());
    }
    let mut joined = Vec::new();
    for i in 0..n {
        joined.extend(fs::read(format!("{dir}/{i}"))?);
    }
    fs::write(format!("/out/{out}"), joined)?;
    println!("{n}");
    Ok(())
}
