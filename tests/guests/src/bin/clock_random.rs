//! `clock_random`: prints exactly four stdout lines read from the host's clocks
//! and random source:
//! `wall <seconds since the UNIX epoch, 6 decimals>` (`SystemTime::now()`),
//! `mono <nanoseconds between two Instant::now() calls around a short busy loop>`,
//! `random <16 hex digits>` and `random2 <16 hex digits>`: the hash of the
//! `u64` 42 under two `RandomState`s, whose keys come from the WASI random
//! source. (std seeds keys once per thread and bumps them for each later
//! `RandomState::new()`, so `random2` differs from `random` within a run.)

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH)?;
    println!("wall {:.6}", wall.as_secs_f64());

    let start = Instant::now();
    let mut acc: u64 = 0;
    for i in 0..10_000u64 {
        acc = black_box(acc.wrapping_add(i));
    }
    let end = Instant::now();
    black_box(acc);
    println!("mono {}", end.duration_since(start).as_nanos());

    println!("random {:016x}", RandomState::new().hash_one(42u64));
    println!("random2 {:016x}", RandomState::new().hash_one(42u64));
    Ok(())
}
