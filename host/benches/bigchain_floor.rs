//! The floor under `bench/run`'s `bigchain` shape, against `cp`: what its
//! three jobs' byte work costs as plain native code, with no sandbox, no
//! scheduler and no records.
//!
//!     cargo bench -p cairn --bench bigchain_floor [-- MIB]
//!
//! `bigchain` generates an artifact of MIB MiB (default 1024), copies it
//! through a second job and hashes it in a third. Done natively, that is
//! at least: fill and write the bytes while hashing them (a content-
//! addressed store names a blob by its hash), read them back and write a
//! copy while hashing, then read the copy and hash it. Nothing is fsynced,
//! so this is below what a store that makes blobs durable can do. `cp` of
//! the same bytes (`std::fs::copy`, an in-kernel copy) is the baseline the
//! issue sets `bigchain` against. Both run alternately in the same
//! directory, `bench/work/bigchain-floor`, and the medians are reported
//! with their ratio, and written to `bench/work/bigchain-floor.json` for
//! `bench/run`'s bigchain table.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const BLOCK: usize = 1 << 20;
const RUNS: usize = 5;

fn main() {
    let mib: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1024);
    let bytes = mib << 20;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = root.join("bench/work/bigchain-floor");
    fs::create_dir_all(&dir).unwrap();
    let (a, b, src) = (dir.join("a"), dir.join("b"), dir.join("src"));
    // `cp`'s source, written once; the chain writes its own.
    generate(&src, bytes);

    let (mut cp, mut native) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let _ = fs::remove_file(&b);
        let t = Instant::now();
        fs::copy(&src, &b).unwrap();
        cp.push(t.elapsed());

        for f in [&a, &b] {
            let _ = fs::remove_file(f);
        }
        let t = Instant::now();
        let written = generate(&a, bytes);
        let copied = copy(&a, &b);
        let consumed = hash(&b);
        native.push(t.elapsed());
        assert!(written == copied && copied == consumed, "the copy differs");
    }
    for f in [&a, &b, &src] {
        let _ = fs::remove_file(f);
    }
    let (cp, native) = (median(&mut cp), median(&mut native));
    println!("bigchain floor, {mib} MiB, median of {RUNS} runs each, alternating:");
    println!(
        "  cp (std::fs::copy)                  {:>8.3} s",
        cp.as_secs_f64()
    );
    println!(
        "  generate + copy + hash, native      {:>8.3} s",
        native.as_secs_f64()
    );
    println!(
        "  native / cp                         {:>8.2}x",
        native.as_secs_f64() / cp.as_secs_f64()
    );
    let json = serde_json::json!({
        "mib": mib,
        "runs": RUNS,
        "cp_s": cp.as_secs_f64(),
        "native_s": native.as_secs_f64(),
    });
    let out = root.join("bench/work/bigchain-floor.json");
    fs::write(&out, format!("{json:#}\n")).unwrap();
    println!("  wrote {}", out.display());
}

/// Writes `bytes` of `bench/tasks/bench`'s pattern (byte k is k mod 251),
/// hashing them on the way; returns the digest.
fn generate(path: &Path, bytes: u64) -> blake3::Hash {
    let pattern: Vec<u8> = (0..BLOCK + 250).map(|k| (k % 251) as u8).collect();
    let mut out = File::create(path).unwrap();
    let mut hasher = blake3::Hasher::new();
    let mut offset = 0u64;
    while offset < bytes {
        let len = (bytes - offset).min(BLOCK as u64) as usize;
        let start = (offset % 251) as usize;
        let block = &pattern[start..start + len];
        hasher.update(block);
        out.write_all(block).unwrap();
        offset += len as u64;
    }
    hasher.finalize()
}

/// Copies `from` to `to` through a buffer, hashing what it writes.
fn copy(from: &Path, to: &Path) -> blake3::Hash {
    let mut out = File::create(to).unwrap();
    read_hashing(from, |block| out.write_all(block).unwrap())
}

/// Reads `path` and hashes it.
fn hash(path: &Path) -> blake3::Hash {
    read_hashing(path, |_| {})
}

/// Reads `path` a block at a time, hashing each block and handing it to `f`.
fn read_hashing(path: &Path, mut f: impl FnMut(&[u8])) -> blake3::Hash {
    let mut input = File::open(path).unwrap();
    let mut hasher = blake3::Hasher::new();
    let mut block = vec![0u8; BLOCK];
    loop {
        let n = input.read(&mut block).unwrap();
        if n == 0 {
            return hasher.finalize();
        }
        hasher.update(&block[..n]);
        f(&block[..n]);
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}
