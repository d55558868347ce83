//! Scale-out on a real REAPI server: BuildGrid, started by the project's
//! own script (`tests/remote/server`) on 127.0.0.1, one per test so that
//! tests share no state and run in parallel.

use crate::util::{Project, Run, run_cairn};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A BuildGrid server of this test's own, stopped when dropped.
pub struct Server {
    dir: PathBuf,
    pub url: String,
}

/// Installs BuildGrid (and PostgreSQL) once per test run: quick when done.
fn install() {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let r = INSTALLED.get_or_init(|| {
        let out = Command::new(script())
            .arg("install")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = r {
        panic!(
            "the REAPI test server could not be installed; run `tests/remote/server install`:\n{e}"
        );
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/remote/server")
}

impl Server {
    /// Starts one (`--exec`: with PostgreSQL and the execution and bots
    /// services). A server that cannot start fails the test with the
    /// command to run; nothing is skipped.
    pub fn start(name: &str, extra: &[&str]) -> Server {
        install();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/remote")
            .join(format!("test-{name}-{}", std::process::id()));
        let out = Command::new(script())
            .arg("start")
            .arg("--dir")
            .arg(&dir)
            .args(extra)
            .output()
            .expect("running tests/remote/server");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let url = stdout.lines().last().unwrap_or_default().to_string();
        assert!(
            out.status.success() && url.starts_with("grpc://127.0.0.1:"),
            "the REAPI test server did not start; install it with `tests/remote/server install` \
             and try `tests/remote/server start --dir {}`:\n{stdout}\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Server { dir, url }
    }

    /// Starts `n` `cairn worker`s against it (the script's default command,
    /// with this build's binary).
    pub fn workers(&self, n: usize) {
        let out = Command::new(script())
            .args(["workers", &n.to_string(), "--dir"])
            .arg(&self.dir)
            .env("CAIRN_BIN", env!("CARGO_BIN_EXE_cairn"))
            .output()
            .expect("running tests/remote/server");
        assert!(out.status.success(), "workers did not start: {out:?}");
    }

    /// What worker `i` printed so far.
    pub fn worker_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("worker-{i}.log"))).unwrap_or_default()
    }

    /// Kills worker `i` at once (SIGKILL), as a machine dying would.
    pub fn kill_worker(&self, i: usize) {
        let pid = std::fs::read_to_string(self.dir.join(format!("worker-{i}.pid"))).unwrap();
        let pid = pid.split_whitespace().next().unwrap();
        let killed = Command::new("kill").args(["-9", pid]).status().unwrap();
        assert!(killed.success());
    }

    /// Stops it (the test goes on without it).
    pub fn stop(&self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg("--dir")
            .arg(&self.dir)
            .output();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("clean")
            .arg("--dir")
            .arg(&self.dir)
            .output();
    }
}

/// The RPC counts a run printed (`remote: N calls (…)`).
pub fn remote_calls(run: &Run) -> u64 {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("remote: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no remote line: {run:?}"))
}

fn output_path(run: &Run, label: &str) -> PathBuf {
    let line = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no output {label}: {run:?}"));
    PathBuf::from(line.split_whitespace().last().unwrap())
}

#[test]
fn two_fresh_stores_share_the_example_through_a_real_server() {
    let server = Server::start("example", &[]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let wf = root.join("examples/wordcount/wordcount.yaml");
    let wf = wf.to_str().unwrap();
    let run = |store: &Path, extra: &[&str]| {
        let mut args = vec![
            "run",
            wf,
            "--store",
            store.to_str().unwrap(),
            "--remote",
            &server.url,
        ];
        args.extend(extra);
        run_cairn(&root, &args, &[])
    };
    let first = run(a.path(), &[]);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stderr.contains("7 executed, 0 cached"), "{first:?}");
    let second = run(b.path(), &[]);
    assert_eq!(second.code, 0, "{second:?}");
    assert!(second.stderr.contains("0 executed, 7 cached"), "{second:?}");
    // The whole run answered by its summary: a handful of calls, not one
    // or more per job.
    assert!(remote_calls(&second) <= 6, "{second:?}");
    let (ra, rb) = (
        output_path(&first, "report.report"),
        output_path(&second, "report.report"),
    );
    assert!(
        rb.starts_with(b.path()),
        "the output is in the second store: {second:?}"
    );
    assert_eq!(std::fs::read(&ra).unwrap(), std::fs::read(&rb).unwrap());
    // A changed parameter in a third store runs only what it changes.
    let c = tempfile::tempdir().unwrap();
    let third = run(c.path(), &["--param", "top=3"]);
    assert_eq!(third.code, 0, "{third:?}");
    assert!(third.stderr.contains("1 executed, 6 cached"), "{third:?}");
    // `why` and the records work from the remote answers as from local ones.
    let id = run_cairn(
        &root,
        &["runs", "--json", "--store", c.path().to_str().unwrap()],
        &[],
    )
    .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let why = run_cairn(
        &root,
        &[
            "why",
            &id,
            "count[part=0]",
            "--store",
            c.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(why.stdout.contains("came from the cache"), "{why:?}");
}

/// A chain of `n` jobs, each appending the input text to its
/// predecessor's output (so every output is different).
fn chain(n: usize) -> String {
    let mut y = String::from(
        "inputs:\n  text: text.txt\njobs:\n  j0:\n    uses: {COPY}\n    args: [t, out]\n    inputs:\n      t: ${{ inputs.text }}\n    outputs: [out]\n",
    );
    for i in 1..n {
        y.push_str(&format!(
            "  j{i}:\n    uses: {{CONCAT}}\n    args: [parts, out]\n    inputs:\n      parts: [\"${{{{ jobs.j{}.outputs.out }}}}\", \"${{{{ inputs.text }}}}\"]\n    outputs: [out]\n",
            i - 1
        ));
    }
    y
}

#[test]
fn a_fresh_store_reruns_a_deep_chain_in_a_handful_of_calls_and_fetches_only_what_it_needs() {
    let server = Server::start("chain", &[]);
    let (a, b) = (Project::new(), Project::new());
    for p in [&a, &b] {
        p.write("text.txt", "deep");
        p.workflow(&chain(120));
    }
    let first = a.cairn(&["run", "wf.yaml", "--remote", &server.url]);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stderr.contains("120 executed"), "{first:?}");
    let second = b.cairn(&["run", "wf.yaml", "--remote", &server.url]);
    assert_eq!(second.code, 0, "{second:?}");
    assert!(
        second.stderr.contains("0 executed, 120 cached"),
        "{second:?}"
    );
    assert!(remote_calls(&second) <= 6, "{second:?}");
    // Only the final output came here, not the 119 intermediate ones.
    let outputs = walk(&b.path().join(".cairn/blobs"))
        .iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.len() > 4 && b.starts_with(b"deep")))
        .count();
    assert_eq!(outputs, 1, "only the final output was fetched");
    // Without the summary (a per-job lookup each) it still hits, and a job
    // that runs here fetches the inputs it needs.
    std::fs::remove_dir_all(b.path().join(".cairn")).unwrap();
    b.workflow(&chain(121));
    let third = b.cairn(&["run", "wf.yaml", "--remote", &server.url]);
    assert_eq!(third.code, 0, "{third:?}");
    assert!(third.stderr.contains("1 executed, 120 cached"), "{third:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn an_unreachable_server_is_a_clear_error_at_once() {
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {NOOP}\n");
    // A port nothing listens on (bound and released).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("grpc://127.0.0.1:{port}");
    let started = Instant::now();
    let run = p.cairn(&["run", "wf.yaml", "--remote", &url]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("REAPI server {url}: connecting")),
        "{run:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    let bad = p.cairn(&["run", "wf.yaml", "--remote", "http://127.0.0.1:1"]);
    assert_ne!(bad.code, 0, "{bad:?}");
    assert!(
        bad.stderr.contains("expected a URL such as grpc://"),
        "{bad:?}"
    );
}

#[test]
fn a_server_that_stops_mid_run_leaves_the_run_to_finish_here() {
    let server = Server::start("stops", &[]);
    let p = Project::new();
    let mut y = String::from("jobs:\n");
    for i in 0..12 {
        y.push_str(&format!(
            "  s{i}:\n    uses: {{SLEEP_MS}}\n    args: ['{}']\n    stdout: out\n",
            300 + i
        ));
    }
    p.workflow(&y);
    let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["run", "wf.yaml", "-j", "2", "--remote", &server.url])
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    server.stop();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("12 executed"), "{stderr}");
    assert!(
        stderr.contains("warning: "),
        "the lost server is reported: {stderr}"
    );
    // Nothing local was lost: a local rerun is fully cached.
    let again = p.cairn(&["run", "wf.yaml"]);
    assert!(again.stderr.contains("0 executed, 12 cached"), "{again:?}");
}

/// A TCP proxy that replaces `from` with `to` (same length) in what the
/// server sends: a server (or a network) that serves wrong bytes.
struct Corrupting {
    port: u16,
    replaced: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Corrupting {
    fn start(upstream: &str, from: &'static [u8], to: &'static [u8]) -> Corrupting {
        assert_eq!(from.len(), to.len());
        let upstream = upstream.trim_start_matches("grpc://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let replaced = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (replaced.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pipe(c2, s2, None));
                let r = r.clone();
                std::thread::spawn(move || pipe(server, client, Some((from, to, r))));
            }
        });
        Corrupting {
            port,
            replaced,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.port)
    }
}

impl Drop for Corrupting {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

type Swap = (&'static [u8], &'static [u8], Arc<AtomicUsize>);

fn pipe(mut from: TcpStream, mut to: TcpStream, swap: Option<Swap>) {
    let mut held: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = to.write_all(&held);
                let _ = to.shutdown(std::net::Shutdown::Write);
                return;
            }
            Ok(n) => n,
        };
        held.extend_from_slice(&buf[..n]);
        if let Some((pat, rep, count)) = &swap {
            let mut i = 0;
            while i + pat.len() <= held.len() {
                if &held[i..i + pat.len()] == *pat {
                    held[i..i + pat.len()].copy_from_slice(rep);
                    count.fetch_add(1, Ordering::Relaxed);
                    i += pat.len();
                } else {
                    i += 1;
                }
            }
            // Hold back a tail that could be the start of the pattern.
            let keep = (1..pat.len())
                .rev()
                .find(|&k| k <= held.len() && held.ends_with(&pat[..k]))
                .unwrap_or(0);
            let cut = held.len() - keep;
            if to.write_all(&held[..cut]).is_err() {
                return;
            }
            held.drain(..cut);
        } else {
            if to.write_all(&held).is_err() {
                return;
            }
            held.clear();
        }
    }
}

#[test]
fn a_blob_served_with_wrong_bytes_is_refused_and_nothing_local_is_overwritten() {
    let server = Server::start("corrupt", &[]);
    let (a, b) = (Project::new(), Project::new());
    for p in [&a, &b] {
        p.write("text.txt", "cairn-poison-marker");
        p.workflow("inputs:\n  text: text.txt\njobs:\n  up:\n    uses: {UPPER}\n    inputs:\n      text: ${{ inputs.text }}\n    outputs: [text]\n");
    }
    let first = a.cairn(&["run", "wf.yaml", "--remote", &server.url]);
    assert_eq!(first.code, 0, "{first:?}");
    let digest = first
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("up.text"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_string();
    let proxy = Corrupting::start(&server.url, b"CAIRN-POISON-MARKER", b"CAIRN-POISON-MARKEr");
    let second = b.cairn(&["run", "wf.yaml", "--remote", &proxy.url()]);
    assert!(
        proxy.replaced.load(Ordering::Relaxed) > 0,
        "the proxy changed bytes: {second:?}"
    );
    // The job is answered by the cache, but the run cannot deliver its
    // output: the machine's fault (exit 3), said plainly.
    assert_eq!(second.code, 3, "{second:?}");
    assert!(second.stderr.contains("do not match"), "{second:?}");
    let local = b
        .path()
        .join(".cairn/blobs")
        .join(&digest[..2])
        .join(&digest[2..]);
    assert!(
        !local.exists(),
        "the wrong bytes were not stored: {second:?}"
    );
    let cat = b.cairn(&["cat", &digest, "--remote", &proxy.url()]);
    assert_eq!(cat.code, 3, "{cat:?}");
    assert!(cat.stderr.contains("refused"), "{cat:?}");
    // Through the real server the same blob comes, and is right.
    let good = b.cairn(&["cat", &digest, "--remote", &server.url]);
    assert_eq!(good.code, 0, "{good:?}");
    assert_eq!(good.stdout, "CAIRN-POISON-MARKER");
    let verify = b.cairn(&["store", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn configurations_are_saved_for_the_user_alone_masked_and_chosen_at_run_time() {
    let server = Server::start("config", &[]);
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("XDG_CONFIG_HOME", home.path().to_str().unwrap()),
        ("CAIRN_TOKEN", "s3cr3t"),
    ];
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {ECHO_ARGS}\n    args: [configured]\n    stdout: out\n");
    let cairn = |args: &[&str], extra: &[(&str, &str)]| {
        let mut e = env.to_vec();
        e.extend_from_slice(extra);
        run_cairn(p.path(), args, &e)
    };
    let add = cairn(
        &[
            "config",
            "add",
            "shared",
            "--remote",
            &server.url,
            "--header",
            "authorization=Bearer hunter2",
            "--header-from-env",
            "x-token=CAIRN_TOKEN",
        ],
        &[],
    );
    assert_eq!(add.code, 0, "{add:?}");
    let file = home.path().join("cairn/configs.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let show = cairn(&["config", "show", "shared"], &[]);
    assert!(
        show.stdout.contains("authorization: Bearer ********"),
        "{show:?}"
    );
    assert!(!show.stdout.contains("hunter2"), "{show:?}");
    assert!(
        show.stdout.contains("x-token: from $CAIRN_TOKEN"),
        "{show:?}"
    );
    let list = cairn(&["config", "list"], &[]);
    assert!(
        list.stdout.contains("local") && list.stdout.contains("shared"),
        "{list:?}"
    );
    // Chosen by flag, or by CAIRN_CONFIG; `local` is the default.
    let by_flag = cairn(&["run", "wf.yaml", "--config", "shared"], &[]);
    assert_eq!(by_flag.code, 0, "{by_flag:?}");
    assert!(by_flag.stderr.contains("remote: "), "{by_flag:?}");
    let by_env = cairn(&["run", "wf.yaml"], &[("CAIRN_CONFIG", "shared")]);
    assert!(by_env.stderr.contains("remote: "), "{by_env:?}");
    let local = cairn(&["run", "wf.yaml"], &[]);
    assert!(!local.stderr.contains("remote: "), "{local:?}");
    // Never in a record: the run's records name no server and no header.
    let db = std::fs::read(p.path().join(".cairn/runs.db")).unwrap();
    let text = String::from_utf8_lossy(&db);
    assert!(
        !text.contains("hunter2") && !text.contains(&server.url),
        "config in the records"
    );
    let missing = cairn(&["run", "wf.yaml", "--config", "nope"], &[]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(
        missing.stderr.contains("no configuration `nope`"),
        "{missing:?}"
    );
    let unset = run_cairn(
        p.path(),
        &["run", "wf.yaml", "--config", "shared"],
        &[("XDG_CONFIG_HOME", home.path().to_str().unwrap())],
    );
    assert_eq!(unset.code, 2, "{unset:?}");
    assert!(unset.stderr.contains("$CAIRN_TOKEN"), "{unset:?}");
    let rm = cairn(&["config", "remove", "shared"], &[]);
    assert_eq!(rm.code, 0, "{rm:?}");
    assert_eq!(cairn(&["config", "show", "shared"], &[]).code, 2);
}

/// The `(label, digest)` of every output line a run printed.
fn outputs(run: &Run) -> Vec<(String, String)> {
    run.stdout
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.next().unwrap().to_string())
        })
        .collect()
}

#[test]
fn two_workers_run_the_wordcount_examples_remotely_byte_for_byte() {
    let server = Server::start("exec", &["--exec", "--keepalive", "5"]);
    server.workers(2);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for example in [
        "examples/wordcount/wordcount.yaml",
        "examples/wordcount-typed/wordcount.yaml",
    ] {
        let wf = root.join(example);
        let wf = wf.to_str().unwrap();
        let (here, there) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let local = run_cairn(
            &root,
            &["run", wf, "--store", here.path().to_str().unwrap()],
            &[],
        );
        assert_eq!(local.code, 0, "{local:?}");
        let remote = run_cairn(
            &root,
            &[
                "run",
                wf,
                "--store",
                there.path().to_str().unwrap(),
                "--remote",
                &server.url,
                "--remote-exec",
            ],
            &[],
        );
        assert_eq!(remote.code, 0, "{remote:?}");
        assert!(remote.stderr.contains("7 executed, 0 cached"), "{remote:?}");
        assert!(
            remote.stderr.contains("Execute 7"),
            "every job went to the server: {remote:?}"
        );
        assert_eq!(outputs(&local), outputs(&remote), "byte-identical outputs");
        assert!(!outputs(&remote).is_empty());
        // Kept here: the final output is in the local store.
        for (label, _) in outputs(&remote) {
            assert!(output_path(&remote, &label).exists(), "{label}: {remote:?}");
        }
    }
    let leases: usize = (0..2)
        .map(|i| server.worker_log(i).matches(": running").count())
        .sum();
    assert_eq!(
        leases,
        14,
        "two examples of 7 jobs, each leased once: {} {}",
        server.worker_log(0),
        server.worker_log(1)
    );
    // A saved configuration that says --remote-exec needs no more flags.
    let home = tempfile::tempdir().unwrap();
    let env = [("XDG_CONFIG_HOME", home.path().to_str().unwrap())];
    let p = Project::new();
    p.workflow("jobs:\n  a:\n    uses: {ECHO_ARGS}\n    args: [on, a, worker]\n    stdout: out\n");
    let add = run_cairn(
        p.path(),
        &[
            "config",
            "add",
            "cluster",
            "--remote",
            &server.url,
            "--remote-exec",
        ],
        &env,
    );
    assert_eq!(add.code, 0, "{add:?}");
    let run = run_cairn(p.path(), &["run", "wf.yaml", "--config", "cluster"], &env);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("Execute 1"), "{run:?}");
    let out = output_path(&run, "a.out");
    assert_eq!(
        std::fs::read_to_string(p.path().join(out)).unwrap(),
        "on\na\nworker\n"
    );
}

#[test]
fn a_worker_killed_mid_job_has_its_job_finished_by_the_other() {
    let server = Server::start("kill", &["--exec", "--keepalive", "5"]);
    server.workers(2);
    let p = Project::new();
    p.workflow("jobs:\n  long:\n    uses: {SLEEP_MS}\n    args: ['4000']\n    stdout: out\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["run", "wf.yaml", "--remote", &server.url, "--remote-exec"])
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Whichever worker took the job dies while it runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    let taken = loop {
        if let Some(i) = (0..2).find(|&i| server.worker_log(i).contains(": running")) {
            break i;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "no worker took the job: {}\n{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                server.worker_log(0),
                server.worker_log(1)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(500));
    server.kill_worker(taken);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("1 executed"), "{stderr}");
    let other = 1 - taken;
    assert!(
        server.worker_log(other).contains(": running"),
        "re-leased to the other worker: {}",
        server.worker_log(other)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("long.out"),
        "{stderr}"
    );
}

#[test]
fn the_server_dying_mid_run_fails_it_with_exit_3_and_keeps_every_finished_result() {
    let server = Server::start("dies", &["--exec", "--keepalive", "5"]);
    server.workers(2);
    let p = Project::new();
    let mut y = String::from("jobs:\n");
    for i in 0..3 {
        y.push_str(&format!(
            "  quick{i}:\n    uses: {{ECHO_ARGS}}\n    args: [quick, '{i}']\n    stdout: out\n"
        ));
    }
    for i in 0..2 {
        y.push_str(&format!("  slow{i}:\n    uses: {{SLEEP_MS}}\n    args: ['{}']\n    needs: [quick0, quick1, quick2]\n    stdout: out\n", 20000 + i));
    }
    p.workflow(&y);
    let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["run", "wf.yaml", "--remote", &server.url, "--remote-exec"])
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    // All five leased: the three quick ones done, the two slow ones running.
    let leased = || -> usize {
        (0..2)
            .map(|i| server.worker_log(i).matches(": running").count())
            .sum()
    };
    while leased() < 5 {
        assert!(Instant::now() < deadline, "the slow jobs never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    server.stop();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("REAPI server {}", server.url)),
        "the server is named: {stderr}"
    );
    // The finished jobs' results are here: a local rerun takes them from
    // the cache and runs only the two that did not finish.
    let again = p.cairn(&["run", "wf.yaml"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("2 executed, 3 cached"), "{again:?}");
}

#[test]
fn a_generic_reapi_worker_with_cairn_on_its_path_executes_cairn_actions() {
    let server = Server::start("generic", &["--exec", "--keepalive", "5"]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cairn"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // A worker that knows nothing of Cairn: it materialises the input root
    // and runs the action's command (`cairn action`) in it.
    let mut worker = Command::new(root.join("target/remote/venv/bin/python"))
        .arg(root.join("tests/remote/generic_worker.py"))
        .arg(&server.url)
        .env("PATH", &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the generic worker runs with BuildGrid's Python (tests/remote/server install)");
    let p = Project::new();
    p.write("data.txt", "one two three four");
    p.workflow("inputs:\n  data: data.txt\njobs:\n  up:\n    uses: {UPPER}\n    inputs:\n      text: ${{ inputs.data }}\n    outputs: [text]\n  split:\n    uses: {TYPED_SPLIT}\n    with:\n      text: ${{ jobs.up.outputs.text }}\n      count: 2\n  join:\n    uses: {TYPED_CONCAT}\n    with:\n      parts: ${{ jobs.split.outputs.chunks }}\n");
    let local = Project::new();
    local.write("data.txt", "one two three four");
    std::fs::copy(p.path().join("wf.yaml"), local.path().join("wf.yaml")).unwrap();
    let here = local.cairn(&["run", "wf.yaml"]);
    assert_eq!(here.code, 0, "{here:?}");
    let run = p.cairn(&["run", "wf.yaml", "--remote", &server.url, "--remote-exec"]);
    let _ = worker.kill();
    let out = worker.wait_with_output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(run.code, 0, "{run:?}\nworker:\n{log}");
    assert!(run.stderr.contains("3 executed"), "{run:?}");
    assert_eq!(
        log.matches("leased").count(),
        3,
        "every job ran on the generic worker: {log}"
    );
    assert_eq!(
        outputs(&here),
        outputs(&run),
        "byte-identical to a local run"
    );
}
