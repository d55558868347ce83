//! `memory_bomb`: allocates 16 MiB chunks forever, writing every byte of each
//! one and keeping them all alive, so linear memory keeps growing until an
//! allocation fails; it then aborts (a trap) without printing anything.

use std::hint::black_box;
use std::process;

const CHUNK: usize = 16 << 20;

fn main() {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        // `try_reserve` rather than `Vec::with_capacity`, so that running out
        // of memory aborts silently instead of printing the default
        // "memory allocation of N bytes failed" message.
        if chunks.try_reserve(1).is_err() {
            process::abort();
        }
        let mut chunk: Vec<u8> = Vec::new();
        if chunk.try_reserve_exact(CHUNK).is_err() {
            process::abort();
        }
        // Non-zero fill: every page is really written, not left to zeroed
        // fresh memory.
        chunk.resize(CHUNK, 0xA5);
        chunks.push(black_box(chunk));
        black_box(&mut chunks);
    }
}
