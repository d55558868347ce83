//! `upper`: writes the ASCII-uppercased bytes of `/in/text` to `/out/text`
//! (so distinct inputs such as `abc` and `ABC` give byte-identical outputs).

use std::fs;

fn main() -> std::io::Result<()> {
    let mut text = fs::read("/in/text")?;
    text.make_ascii_uppercase();
    fs::write("/out/text", text)
}
