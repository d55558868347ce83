//! `recurse`: recurses without bound, each frame holding a 4 KiB array that is
//! still used after the recursive call, so the call can be neither turned into
//! a loop nor optimised away; the guest's stack overflows (a trap). Arguments
//! are ignored.

use std::hint::black_box;

const FRAME: usize = 4096;

#[inline(never)]
fn dive(depth: u64) -> u64 {
    // Never true in practice; only here so that the recursion is not
    // unconditional (which rustc rejects with a lint).
    if depth == black_box(u64::MAX) {
        return 0;
    }
    let mut frame = [0u8; FRAME];
    frame[depth as usize % FRAME] = depth as u8;
    let frame = black_box(frame);
    let below = dive(black_box(depth + 1));
    // Work after the call that needs this frame's array: no tail call.
    below.wrapping_add(u64::from(frame[(depth as usize).wrapping_mul(7) % FRAME]))
}

fn main() {
    let total = dive(0);
    println!("{total}");
}
