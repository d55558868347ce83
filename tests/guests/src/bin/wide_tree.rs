//! `wide_tree COUNT`: makes COUNT empty files `/out/wide/0` … (a list
//! output of COUNT elements), printing progress to stderr every 10,000.
//! The host must stop it or refuse its output, not store them all.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = std::env::args().nth(1).ok_or("usage: wide_tree COUNT")?.parse()?;
    std::fs::create_dir("/out/wide")?;
    for i in 0..count {
        std::fs::File::create(format!("/out/wide/{i}"))?;
        if i % 10_000 == 0 {
            eprintln!("{i} files");
        }
    }
    Ok(())
}
