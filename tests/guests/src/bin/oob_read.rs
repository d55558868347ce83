//! `oob_read`: reads a byte at address 2 GiB, far past the end of the
//! guest's linear memory, which traps (an out-of-bounds memory access).

fn main() {
    let address = std::hint::black_box(0x8000_0000usize) as *const u8;
    // SAFETY: none; the point is the trap. The read is volatile so that it
    // is neither removed nor assumed not to happen.
    let byte = unsafe { std::ptr::read_volatile(address) };
    println!("read {byte}");
}
