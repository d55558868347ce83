//! `copy FROM TO`: copies the input file `/in/FROM` to the output `/out/TO`.

use std::{env, fs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = env::args().skip(1).collect();
    let [from, to] = args.as_slice() else {
        return Err("usage: copy FROM TO".into());
    };
    fs::copy(format!("/in/{from}"), format!("/out/{to}"))?;
    Ok(())
}
