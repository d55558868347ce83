//! `spin`: loops forever without yielding, sleeping or printing; the host must
//! stop it (fuel, epoch deadline or wall-clock timeout). Never returns.

use std::hint::black_box;

fn main() {
    let mut counter: u64 = 0;
    loop {
        // `black_box` makes every iteration observable, so the optimiser can
        // neither drop the loop nor fold it into a single trap or a constant.
        counter = black_box(counter.wrapping_add(1));
    }
}
