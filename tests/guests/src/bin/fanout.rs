//! `fanout N`: writes the list output `/out/parts/0` … `/out/parts/{N-1}`,
//! file `i` holding `part i\n`.

use std::{env, fs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = env::args().nth(1).ok_or("usage: fanout N")?.parse()?;
    fs::create_dir_all("/out/parts")?;
    for i in 0..n {
        fs::write(format!("/out/parts/{i}"), format!("part {i}\n"))?;
    }
    Ok(())
}
