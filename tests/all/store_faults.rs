//! The store under faults: a full disk, and damaged files (a truncated or
//! corrupt `runs.db`, a tampered blob, a tampered cache entry). Each is
//! detected and reported, never trusted, never a panic.

use std::path::Path;

/// Every regular file below `dir` (relative paths, sorted), but the `lock`
/// of a process's scratch directory, which stays until another process
/// finds its owner gone.
pub fn files_below(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(root, &path, out),
                Ok(_) if e.file_name() == "lock" => {}
                Ok(_) => out.push(path.strip_prefix(root).unwrap().display().to_string()),
                Err(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

use crate::crash::{Rng, assert_store_clean};
use crate::util::{Project, Run};
use std::path::PathBuf;
use std::process::Command;

/// A small filesystem for a store to fill: a tmpfs mounted under the
/// target directory for this test and unmounted after it, or the one
/// `CAIRN_TEST_SMALL_FS` names. Without either, the test fails and says
/// what to run; it never passes without having filled a disk.
struct SmallFs {
    dir: PathBuf,
    mounted: bool,
}

impl SmallFs {
    fn new(name: &str, size: &str) -> SmallFs {
        if let Some(given) = std::env::var_os("CAIRN_TEST_SMALL_FS") {
            let dir = PathBuf::from(given).join(format!("{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            return SmallFs {
                dir,
                mounted: false,
            };
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("small-fs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "cairn-test"])
            .arg(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => SmallFs { dir, mounted: true },
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                panic!(
                    "the disk-full test needs a small filesystem, and mounting a tmpfs at {} failed: {why}\n\
                     run the tests as root (they mount a tmpfs under target/ and unmount it after), or mount one \
                     and name it:\n  sudo mount -t tmpfs -o size={size} tmpfs /mnt/cairn-small && sudo chown $USER /mnt/cairn-small\n  \
                     CAIRN_TEST_SMALL_FS=/mnt/cairn-small cargo test -p cairn --test all store_faults",
                    dir.display()
                )
            }
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.dir).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn on(store: &Path, p: &Project, args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    let store = store.to_str().unwrap();
    all.extend(["--store", store]);
    p.cairn(&all)
}

#[test]
fn a_disk_that_fills_mid_run_fails_the_run_as_the_hosts_fault_and_the_store_verifies_clean() {
    let fs = SmallFs::new("disk-full", "8m");
    let store = fs.dir.join("store");
    let p = Project::new();
    p.workflow(
        "jobs:
  small:
    uses: {ECHO_ARGS}
    args: [before]
    stdout: out
  big:
    uses: {BIG_OUTPUT}
    needs: small
    args: ['1']
    outputs: [big]
  chatty:
    uses: {CHATTY}
    needs: small
    args: ['64']
    stdout: out
  after:
    uses: {ECHO_ARGS}
    needs: [big, chatty]
    args: [after]
    stdout: out
",
    );
    let run = on(&store, &p, &["run", "wf.yaml", "--keep-going", "-j", "1"]);
    assert_eq!(
        run.code, 3,
        "the machine's fault, not the workflow's: {run:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "failed   big: host: no space left on the store's filesystem ({})",
            store.display()
        )),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("failed   chatty: host: no space left"),
        "{run:?}"
    );
    assert_eq!(run.status_of("small"), Some("done"), "{run:?}");
    assert_eq!(run.status_of("after"), Some("skipped"), "{run:?}");
    // The store holds only whole blobs, and the failed jobs' writes are gone.
    assert_store_clean(&store, "after the disk filled");
    let v = on(&store, &p, &["store", "verify"]);
    assert!(v.stdout.contains(", 0 problems"), "{v:?}");
    assert_eq!(files_below(&store.join("tmp")), Vec::<String>::new());
    // The records say so, and the run is reported failed.
    let runs = on(&store, &p, &["runs", "--json"]);
    assert_eq!(runs.json()[0]["status"], "failed", "{runs:?}");
    let id = runs.json()[0]["id"].as_str().unwrap().to_string();
    let status = on(&store, &p, &["status", &id, "--json"]).json();
    let big = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "big")
        .unwrap();
    assert_eq!(big["failure_kind"], "host", "{big}");
}

#[test]
fn a_disk_too_full_for_an_input_is_the_hosts_fault() {
    let fs = SmallFs::new("input-full", "4m");
    let store = fs.dir.join("store");
    let p = Project::new();
    p.write("big.txt", vec![b'x'; 8 << 20]);
    p.workflow("inputs:\n  big: big.txt\njobs:\n  copy:\n    uses: {COPY}\n    args: [b, c]\n    inputs:\n      b: ${{ inputs.big }}\n    outputs: [c]\n");
    let run = on(&store, &p, &["run", "wf.yaml"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("input `big`"), "{run:?}");
    assert!(run.stderr.contains("No space left on device"), "{run:?}");
    assert_store_clean(&store, "after the input did not fit");
}

/// A store with two finished runs, and the id of the last.
fn store_with_runs() -> (Project, String) {
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {ECHO_ARGS}\n    args: [one]\n    stdout: out\n  b:\n    uses: {UPPER}\n    inputs:\n      text: ${{ jobs.a.outputs.out }}\n    outputs: [text]\n");
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    assert_eq!(p.cairn(&["run", "wf.yaml", "--no-cache"]).code, 0);
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Everything in the database file itself, none of it in the log.
    let db = rusqlite::Connection::open(p.path().join(".cairn/runs.db")).unwrap();
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(db);
    (p, id)
}

/// Every command that reads the records, on a damaged `runs.db`: none may
/// panic (exit 101), and any that fails names the file.
fn no_command_panics(p: &Project, id: &str, when: &str) -> Vec<Run> {
    let commands: &[&[&str]] = &[
        &["runs"],
        &["runs", "--json"],
        &["status", id],
        &["status", id, "--json"],
        &["results", id, "--json"],
        &["logs", id],
        &["metrics", id],
        &["why", id, "b"],
        &["store", "verify"],
        &["store", "gc", "--keep-last", "1"],
        &["run", "wf.yaml"],
    ];
    commands
        .iter()
        .map(|args| {
            let run = p.cairn(args);
            assert_ne!(run.code, 101, "{when}: cairn {args:?} panicked: {run:?}");
            assert!(
                !run.stderr.contains("panicked"),
                "{when}: cairn {args:?} panicked: {run:?}"
            );
            if run.code == 3 {
                assert!(
                    run.stderr.contains("runs.db"),
                    "{when}: cairn {args:?}: {run:?}"
                );
            }
            run
        })
        .collect()
}

#[test]
fn a_truncated_runs_db_is_reported_and_never_a_panic() {
    let (p, id) = store_with_runs();
    let db = p.path().join(".cairn/runs.db");
    let len = std::fs::metadata(&db).unwrap().len();
    for keep in [len / 2, 4096, 100, 0] {
        let f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        f.set_len(keep).unwrap();
        let runs = no_command_panics(&p, &id, &format!("runs.db cut to {keep} bytes"));
        // `store verify` says what is wrong with it.
        let verify = &runs[8];
        if keep > 0 {
            assert_eq!(verify.code, 1, "{verify:?}");
            assert!(verify.stdout.contains("runs.db"), "{verify:?}");
        }
    }
}

#[test]
fn a_corrupt_runs_db_is_reported_and_never_a_panic() {
    let (p, id) = store_with_runs();
    let db = p.path().join(".cairn/runs.db");
    let pristine = std::fs::read(&db).unwrap();
    let mut rng = Rng(0xdb);
    for round in 0..12 {
        let mut bytes = pristine.clone();
        // Garbage over a stretch of a page, the header included now and then.
        let at = if round % 4 == 0 {
            0
        } else {
            rng.below(bytes.len() as u64) as usize
        };
        for b in bytes.iter_mut().skip(at).take(200) {
            *b = rng.next() as u8;
        }
        std::fs::write(&db, &bytes).unwrap();
        let _ = std::fs::remove_file(p.path().join(".cairn/runs.db-wal"));
        no_command_panics(&p, &id, &format!("garbage at {at} (round {round})"));
    }
}

#[test]
fn a_tampered_blob_is_reported_never_handed_to_a_job_and_written_anew() {
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {ECHO_ARGS}\n    args: [one]\n    stdout: out\n  b:\n    uses: {UPPER}\n    inputs:\n      text: ${{ jobs.a.outputs.out }}\n    outputs: [text]\n");
    let first = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(first.code, 0, "{first:?}");
    let digest = cairn::Digest::of(b"one\n");
    let path = p.path().join(format!(
        ".cairn/blobs/{}/{}",
        &digest.to_hex()[..2],
        &digest.to_hex()[2..]
    ));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&path, "evil\n").unwrap();
    // Reported,
    let verify = p.cairn(&["store", "verify"]);
    assert_eq!(verify.code, 1, "{verify:?}");
    assert!(
        verify.stdout.contains(&format!("corrupt blob {digest}")),
        "{verify:?}"
    );
    // never given out,
    let cat = p.cairn(&["cat", &digest.to_hex()]);
    assert_ne!(cat.code, 0, "{cat:?}");
    assert!(!cat.stdout.contains("evil"), "{cat:?}");
    assert!(cat.stderr.contains("corrupt"), "{cat:?}");
    // and not trusted by the cache: `a` runs again and writes it anew, so
    // `b` reads the real bytes.
    let rerun = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert_eq!(rerun.status_of("a"), Some("done"), "{rerun:?}");
    assert_eq!(
        crate::execution::output_bytes(&p, &rerun, "b.text"),
        "ONE\n"
    );
    assert_store_clean(&p.path().join(".cairn"), "after the rerun");
}

#[test]
fn a_tampered_cache_entry_is_reported_and_never_trusted() {
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {ECHO_ARGS}\n    args: [one]\n    stdout: out\n  b:\n    uses: {ECHO_ARGS}\n    args: [two]\n    stdout: out\n");
    assert_eq!(p.cairn(&["run", "wf.yaml"]).code, 0);
    let ac = p.path().join(".cairn/ac");
    let entries: Vec<PathBuf> = files_below(&ac).iter().map(|f| ac.join(f)).collect();
    assert_eq!(entries.len(), 2);
    let one = cairn::Digest::of(b"one\n").to_hex();
    let two = cairn::Digest::of(b"two\n").to_hex();
    // One entry torn, the other given the other job's output: every blob
    // it names exists, but it was not written so.
    let (a, b): (Vec<&PathBuf>, Vec<&PathBuf>) = entries
        .iter()
        .partition(|e| std::fs::read_to_string(e).unwrap().contains(&one));
    std::fs::write(a[0], "{\"format\": 1, \"outp").unwrap();
    let forged = std::fs::read_to_string(b[0]).unwrap().replace(&two, &one);
    std::fs::write(b[0], forged).unwrap();
    let verify = p.cairn(&["store", "verify"]);
    assert_eq!(verify.code, 1, "{verify:?}");
    assert!(verify.stdout.contains("it has no check line"), "{verify:?}");
    assert!(
        verify
            .stdout
            .contains("its check does not match: it was damaged or edited"),
        "{verify:?}"
    );
    assert!(verify.stdout.contains("2 problems"), "{verify:?}");
    let rerun = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert_eq!(rerun.status_of("a"), Some("done"), "{rerun:?}");
    assert_eq!(rerun.status_of("b"), Some("done"), "{rerun:?}");
    assert_eq!(crate::execution::output_bytes(&p, &rerun, "b.out"), "two\n");
    assert_store_clean(
        &p.path().join(".cairn"),
        "after the rerun rewrote the entries",
    );
}
