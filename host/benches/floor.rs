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
//! several batches (min–max), against an empty loop's in the same run.
//!
//! Then the same task through Cairn's library in the same process: a
//! workflow of independent typed `noop` jobs, executed with one job slot
//! like the loop above, each job in its own sandboxed instance, keyed,
//! cached and recorded. Its per-task time is reported as a ratio to the
//! floor. Both go to `bench/work/floor.json` for `bench/run`'s tables.

use std::path::Path;
use std::sync::Arc;
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
    let store = cairn::Store::open(scratch.path()).unwrap();
    let built = cairn::build_dir(&root.join("bench/tasks/bench"), &store)
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
    let steady = cairn_steady_state(root, scratch.path());
    let steady_median = steady[steady.len() / 2];
    println!(
        "cairn, through the library: {STEADY_TASKS} typed no-op jobs per run, 1 job slot, recorded, {} runs",
        steady.len()
    );
    println!(
        "  per task   {:?} ({:?}–{:?}), {:.2}× the floor",
        steady_median,
        steady[0],
        steady[steady.len() - 1],
        steady_median.as_secs_f64() / median.as_secs_f64()
    );
    let out = root.join("bench/work");
    std::fs::create_dir_all(&out).unwrap();
    let json = serde_json::json!({
        "cairn_per_task_ns": steady_median.as_nanos() as u64,
        "cairn_min_ns": steady[0].as_nanos() as u64,
        "cairn_max_ns": steady[steady.len() - 1].as_nanos() as u64,
        "cairn_tasks": STEADY_TASKS,
        "per_call_ns": median.as_nanos() as u64,
        "min_ns": calls[0].as_nanos() as u64,
        "max_ns": calls[BATCHES - 1].as_nanos() as u64,
        "iterations": iterations,
        "batches": BATCHES,
        "note": "wasmtime 48 alone: pooling allocator, InstancePre, Store::new + instantiate + call noop; cairn: the same task as a recorded workflow job through cairn::execute, steady state (cargo bench -p cairn --bench floor)",
    });
    std::fs::write(out.join("floor.json"), format!("{json:#}\n")).unwrap();
    println!("  wrote {}", out.join("floor.json").display());
}

/// Jobs per run of cairn's own steady-state measurement.
const STEADY_TASKS: usize = 5_000;

/// Cairn's own cost per task in steady state, through the library: one
/// process, the engine warm and the component compiled, a workflow of
/// independent typed no-op jobs executed (`--no-cache`) with one job slot,
/// like the floor's loop, each in its own sandboxed instance and recorded
/// in SQLite. Per-task time of each run, sorted.
fn cairn_steady_state(root: &Path, scratch: &Path) -> Vec<Duration> {
    use cairn::{NewRun, Recorder, Records, RunStatus};
    let task = root.join("bench/tasks/bench");
    let yaml = scratch.join("steady.yaml");
    let matrix: Vec<String> = (0..STEADY_TASKS).map(|i| i.to_string()).collect();
    std::fs::write(
        &yaml,
        format!(
            "name: steady\njobs:\n  t:\n    uses: {}\n    call: noop\n    strategy:\n      matrix:\n        i: [{}]\n    with:\n      i: ${{{{ matrix.i }}}}\n",
            task.display(),
            matrix.join(", ")
        ),
    )
    .unwrap();
    let loaded = cairn::load(&yaml, &Default::default()).unwrap();
    let (store, runtime) = cairn::open(&scratch.join("steady-store")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let prepared = Arc::new(cairn::prepare(&loaded, &store, &runtime, &rt, &mut |_| {}).unwrap());
    let records = Arc::new(Records::open(store.root()).unwrap());
    let opts = cairn::RunOptions {
        jobs: 1,
        keep_going: false,
        no_cache: true,
        limits: Default::default(),
        secrets: Default::default(),
        secret_key: store.secret_key().unwrap(),
    };
    let mut runs: Vec<Duration> = (0..BATCHES + 1)
        .map(|_| {
            let id = cairn::new_run_id();
            let _lock = records
                .begin_run(&NewRun {
                    id: id.clone(),
                    plan: &loaded.plan,
                    workflow_path: yaml.display().to_string(),
                    workflow_digest: loaded.digest,
                })
                .unwrap();
            let recorder = Arc::new(Recorder::start(records.clone(), id));
            let t = Instant::now();
            let report = rt.block_on(cairn::execute(
                &loaded,
                &prepared,
                store.clone(),
                runtime.clone(),
                recorder.clone(),
                &opts,
                None,
            ));
            recorder.finish(RunStatus::Succeeded, None).unwrap();
            let elapsed = t.elapsed();
            assert!(report.success(), "the steady-state workflow failed");
            elapsed / STEADY_TASKS as u32
        })
        .collect();
    // The first run fills the action cache and the store's blobs.
    runs.remove(0);
    runs.sort();
    runs
}
