//! `sleep_ms MS`: sleeps MS milliseconds, then prints `slept MS`.

use std::{env, thread, time::Duration};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ms: u64 = env::args().nth(1).ok_or("usage: sleep_ms MS")?.parse()?;
    thread::sleep(Duration::from_millis(ms));
    println!("slept {ms}");
    Ok(())
}
