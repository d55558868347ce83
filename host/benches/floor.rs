//! The floor under every Cairn task: wasmtime alone instantiating the
//! benchmark's no-op component and calling its `noop` export, in a tight
//! loop, with the pooling allocator and one `InstancePre` — what a task
//! would cost with no scheduler, sandbox, cache or records at all.
//!
//!     cargo bench -p cairn --bench floor [-- ITERATIONS]
//!
//! Cairn builds the component (`bench/tasks/bench`) into a scratch store
//! first. Every import the component declares (WASI, `cairn:task`) is
//! linked to a trap: `noop` calls none of them, and linking the real ones is
//! Cairn's cost, not the floor's. Prints the per-call time of the median of
//! several batches (min–max), against an empty loop's in the same run, and
//! writes `bench/work/floor.json` for `bench/run`'s tables.

use std::path::Path;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

const BATCHES: usize = 7;

fn main() {
    let iterations: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let store = cairn::store::Store::open(scratch.path()).unwrap();
    let built = cairn::builder::build_dir(&root.join("bench/tasks/bench"), &store)
        .unwrap_or_else(|e| panic!("building bench/tasks/bench: {e}"));
    let wasm = store.blob_path(&built.stored.digest);

    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(64)
        .total_core_instances(64 * 4)
        .total_memories(64 * 2)
        .total_tables(64 * 4)
        .max_memory_size(64 << 20);
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true);
    let engine = Engine::new(&config).unwrap();
    let component = Component::from_file(&engine, &wasm).unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker.define_unknown_imports_as_traps(&component).unwrap();
    let pre = linker.instantiate_pre(&component).unwrap();

    let once = || {
        let mut store = Store::new(&engine, ());
        let instance = pre.instantiate(&mut store).unwrap();
        let noop = instance
            .get_typed_func::<(u64,), (u64,)>(&mut store, "noop")
            .unwrap();
        let (out,) = noop.call(&mut store, (7,)).unwrap();
        assert_eq!(out, 7);
    };
    // Warm the pool's slots and the code's pages.
    (0..1_000).for_each(|_| once());
    let per_call = |f: &dyn Fn()| {
        let mut batches: Vec<Duration> = (0..BATCHES)
            .map(|_| {
                let t = Instant::now();
                (0..iterations).for_each(|_| f());
                t.elapsed() / iterations
            })
            .collect();
        batches.sort();
        batches
    };
    let calls = per_call(&once);
    let empty = per_call(&|| {
        std::hint::black_box(Store::new(&engine, ()));
    });
    let median = calls[BATCHES / 2];
    println!(
        "wasmtime floor: instantiate + call `noop`, pooling allocator, {iterations} per batch, {BATCHES} batches"
    );
    println!(
        "  per call   {:?} ({:?}–{:?})",
        median,
        calls[0],
        calls[BATCHES - 1]
    );
    println!(
        "  baseline   {:?} per empty store (Store::new alone), ratio {:.1}×",
        empty[BATCHES / 2],
        median.as_secs_f64() / empty[BATCHES / 2].as_secs_f64().max(1e-12)
    );
    let out = root.join("bench/work");
    std::fs::create_dir_all(&out).unwrap();
    let json = serde_json::json!({
        "per_call_ns": median.as_nanos() as u64,
        "min_ns": calls[0].as_nanos() as u64,
        "max_ns": calls[BATCHES - 1].as_nanos() as u64,
        "iterations": iterations,
        "batches": BATCHES,
        "note": "wasmtime 48 alone: pooling allocator, InstancePre, Store::new + instantiate + call noop (cargo bench -p cairn --bench floor)",
    });
    std::fs::write(out.join("floor.json"), format!("{json:#}\n")).unwrap();
    println!("  wrote {}", out.join("floor.json").display());
}
