//! `cairn serve`, the read-only web view: on stores made by real runs of
//! real components, through the router (`oneshot`, no socket), through a
//! real socket to the real `cairn serve` process, and in real headless
//! Chromium (Debian's, through ChromeDriver: `tests/web/install`), which
//! checks the rendered pages. Each page the browser visits is kept as a
//! screenshot under `target/web-screenshots/`.

use crate::util::{Project, run_cairn};
use cairn_tests::browser::{Browser, get};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `cairn serve` process; killed when dropped.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(store: &Path, extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("serve")
            .arg("--store")
            .arg(store)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
            "first line: {line:?}"
        );
        Serve { child, url }
    }

    fn get(&self, path: &str) -> cairn_tests::browser::Got {
        get(&format!("{}{}", self.url, path.trim_start_matches('/')))
    }

    fn addr(&self) -> &str {
        self.url.trim_start_matches("http://").trim_end_matches('/')
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request written byte for byte, so nothing on the way tidies the path.
fn raw_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

const SECRET: &str = "s3cr3t-value-never-shown";

/// A store with two real runs: typed context jobs (logs, metrics, a label,
/// a secret), a command job whose argument changes between the runs, a
/// matrix with a list fan-in, and a job that fails.
fn two_runs() -> (Project, String, String) {
    let p = Project::new();
    p.workflow(
        "params:
  word: first
jobs:
  ctx:
    uses: {TYPED_CONTEXT}
    with: { name: a }
    secrets: [TOKEN]
  echo:
    uses: {ECHO_ARGS}
    args: [\"${{ params.word }}\", two]
    stdout: said
  piece:
    uses: {WRITE_STDOUT}
    strategy:
      matrix:
        i: [0, 1, 2]
    args: [\"piece ${{ matrix.i }}\"]
    stdout: out
  joined:
    uses: {CONCAT}
    args: [parts, all]
    inputs:
      parts: ${{ jobs.piece.outputs.out }}
    outputs: [all]
  bad:
    uses: {FAIL}
",
    );
    let env = [("TOKEN", SECRET)];
    let first = run_cairn(
        p.path(),
        &["run", "wf.yaml", "--secret", "TOKEN", "--keep-going", "-q"],
        &env,
    );
    assert_eq!(first.code, 1, "{first:?}");
    let second = run_cairn(
        p.path(),
        &[
            "run",
            "wf.yaml",
            "--secret",
            "TOKEN",
            "--keep-going",
            "-q",
            "--param",
            "word=second",
        ],
        &env,
    );
    assert_eq!(second.code, 1, "{second:?}");
    let runs = run_cairn(p.path(), &["runs", "--json"], &[]).json();
    let id = |i: usize| runs[i]["id"].as_str().unwrap().to_string();
    // Newest first.
    let (newer, older) = (id(0), id(1));
    (p, older, newer)
}

fn store(p: &Project) -> std::path::PathBuf {
    p.path().join(".cairn")
}

/// Every file under `dir` with its bytes' digest, but SQLite's shared-memory
/// index (`-shm`), which readers update for their own locking.
fn snapshot(dir: &Path) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                out.push((
                    path.strip_prefix(root).unwrap().display().to_string() + "/",
                    0,
                    String::new(),
                ));
                walk(root, &path, out);
            } else if !path.to_string_lossy().ends_with("-shm") {
                let bytes = std::fs::read(&path).unwrap();
                out.push((
                    path.strip_prefix(root).unwrap().display().to_string(),
                    bytes.len() as u64,
                    blake3::hash(&bytes).to_hex().to_string(),
                ));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn serve_prints_its_loopback_url_first_and_refuses_what_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let run = run_cairn(
        dir.path(),
        &["serve", "--store", missing.to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("is not a cairn store"), "{run:?}");
    assert!(!missing.exists(), "serve created nothing");
    let bad = run_cairn(dir.path(), &["serve", "--addr", "somewhere"], &[]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("expected an IP address"), "{bad:?}");

    let (p, _, newer) = two_runs();
    // A given port is used; loopback by default.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Serve::start(&store(&p), &["--port", &port.to_string()]);
    assert_eq!(s.url, format!("http://127.0.0.1:{port}/"));
    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains(&newer));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
}

#[test]
fn the_api_says_what_the_cli_says() {
    let (p, older, newer) = two_runs();
    let state = cairn::ServeState::open(&store(&p)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Through the router alone, no socket.
    let call = |path: &str| -> (u16, String, Vec<u8>) {
        use tower::ServiceExt;
        let req = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        rt.block_on(async {
            let res = cairn::router(state.clone()).oneshot(req).await.unwrap();
            let status = res.status().as_u16();
            let ct = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = axum::body::to_bytes(res.into_body(), 1 << 30)
                .await
                .unwrap();
            (status, ct, body.to_vec())
        })
    };
    let json = |path: &str| -> Value {
        let (status, ct, body) = call(path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        serde_json::from_slice(&body).unwrap()
    };

    let runs = json("/api/runs");
    assert_eq!(runs.as_array().unwrap().len(), 2);
    assert_eq!(runs[0]["id"], newer.as_str());
    assert_eq!(runs[0]["status"], "failed");
    // ctx, echo, 3 pieces, joined, bad; the second run reruns only echo and bad.
    assert_eq!(runs[0]["jobs"], 7);
    assert_eq!(runs[0]["counts"]["failed"], 1);
    assert_eq!(runs[0]["counts"]["cached"], 5);
    assert_eq!(runs[1]["counts"]["executed"], 6);
    assert_eq!(
        json("/api/runs?status=succeeded").as_array().unwrap().len(),
        0
    );
    assert_eq!(
        json("/api/runs?workflow=wf&limit=1")
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(call("/api/runs?status=weird").0, 400);

    let status = run_cairn(p.path(), &["status", &newer, "--json"], &[]).json();
    let run = json(&format!("/api/runs/{newer}"));
    let names = |v: &Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&run, "jobs"), names(&status, "jobs"));
    assert_eq!(run["params"]["word"], "second");
    // A run id prefix works as on the command line.
    assert_eq!(
        json(&format!("/api/runs/{}", &newer[..8]))["run"]["id"],
        newer.as_str()
    );

    // Why a job ran is what `cairn why` says.
    let echo = json(&format!("/api/runs/{newer}/jobs/echo"));
    let why = run_cairn(p.path(), &["why", &newer, "echo", "--json"], &[]).json();
    assert_eq!(echo["why"], why);
    assert!(
        echo["why"]["differences"][0]
            .as_str()
            .unwrap()
            .contains("argument 1 changed: \"first\" → \"second\""),
        "{echo}"
    );
    assert_eq!(echo["argv"], serde_json::json!(["second", "two"]));

    // Outputs download as the bytes `cairn cat` prints.
    let out = &echo["outputs"][0]["value"];
    let (code, ct, body) = call(out["url"].as_str().unwrap());
    assert_eq!((code, ct.as_str()), (200, "application/octet-stream"));
    let cat = run_cairn(p.path(), &["cat", out["digest"].as_str().unwrap()], &[]);
    assert_eq!(String::from_utf8(body).unwrap(), cat.stdout);
    assert_eq!(cat.stdout, "second\ntwo\n");

    // A fan-in's list input: each element by index, the list itself is not a file.
    let joined = json(&format!("/api/runs/{older}/jobs/joined"));
    let parts = &joined["inputs"][0]["value"]["items"];
    assert_eq!(parts.as_array().unwrap().len(), 3);
    let (code, _, body) = call(parts[2]["url"].as_str().unwrap());
    assert_eq!((code, body.as_slice()), (200, &b"piece 2"[..]));
    let list_url = format!("/api/runs/{older}/jobs/joined/inputs/parts");
    let (code, _, body) = call(&list_url);
    assert_eq!(code, 404);
    assert!(String::from_utf8_lossy(&body).contains("list of 3"));
    assert_eq!(call(&format!("{list_url}/7")).0, 404);
    assert_eq!(call(&format!("{list_url}/x")).0, 400);

    // A matrix instance's name, percent-encoded.
    let piece = json(&format!("/api/runs/{older}/jobs/piece%5Bi%3D1%5D"));
    assert_eq!(piece["group"], "piece");
    assert_eq!(piece["status"], "executed");

    // The typed job: its log lines, metric, label; the secret by name only.
    let ctx = json(&format!("/api/runs/{older}/jobs/ctx"));
    let lines: Vec<&str> = ctx["logs"]["structured"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(lines.contains(&"hello a"), "{lines:?}");
    assert_eq!(ctx["metrics"][0]["name"], "loss");
    assert_eq!(
        ctx["metrics"][0]["points"],
        serde_json::json!([[1, 0.5], [2, 0.25]])
    );
    assert_eq!(ctx["labels"]["owner"], "a");
    assert_eq!(ctx["secrets"], serde_json::json!(["TOKEN"]));
    let (code, ct, body) = call(&format!("/api/runs/{older}/jobs/ctx/logs/stderr"));
    assert_eq!(code, 200);
    assert!(ct.starts_with("text/plain"));
    assert!(String::from_utf8_lossy(&body).contains("[info] hello a"));

    // The failed job: its class, message and log.
    let bad = json(&format!("/api/runs/{older}/jobs/bad"));
    assert_eq!(bad["status"], "failed");
    assert_eq!(bad["failure"]["kind"], "exit");
    assert!(
        bad["logs"]["stderr"]["text"]
            .as_str()
            .unwrap()
            .contains("about to fail")
    );

    // Errors are JSON with a status that says whose fault.
    for (path, code) in [
        ("/api/runs/zzzzzzzz".to_string(), 404),
        ("/api/runs/NOT-AN-ID".to_string(), 400),
        (format!("/api/runs/{older}/jobs/nope"), 404),
        (format!("/api/runs/{older}/jobs/echo/outputs/nope"), 404),
        (format!("/api/runs/{older}/jobs/echo/logs/core"), 404),
        ("/api/nothing".to_string(), 404),
    ] {
        let (got, ct, body) = call(&path);
        assert_eq!(got, code, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(ct.starts_with("application/json"), "{path}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"].is_string());
    }
    let (code, ct, _) = call("/runs/zzzzzzzz");
    assert_eq!(code, 404);
    assert!(ct.starts_with("text/html"));

    // The event stream of an ended run: every job's state, then `end`.
    let (code, ct, body) = call(&format!("/api/runs/{older}/events"));
    assert_eq!(code, 200);
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("event: state"), "{text}");
    assert!(
        text.trim_end().ends_with("event: end\ndata: failed"),
        "{text}"
    );

    // The SVG of the DAG: a node per job, and it is standalone.
    let (code, ct, svg) = call(&format!("/api/runs/{older}/dag.svg"));
    assert_eq!((code, ct.as_str()), (200, "image/svg+xml; charset=utf-8"));
    let svg = String::from_utf8(svg).unwrap();
    assert_eq!(svg.matches(r#" id="n"#).count(), 7);
    assert!(svg.contains("<style>"));
}

#[test]
fn no_path_reaches_outside_the_records_and_no_secret_is_shown() {
    let (p, older, newer) = two_runs();
    let s = Serve::start(&store(&p), &[]);
    let addr = s.addr().to_string();
    let attempts = [
        "/assets/../../../../etc/passwd".to_string(),
        "/assets/..%2f..%2f..%2f..%2fetc%2fpasswd".into(),
        "/assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd".into(),
        "/assets/%2e%2e%2fruns.db".into(),
        "/../../../etc/passwd".into(),
        "//etc/passwd".into(),
        "/runs/..%2f..%2fetc".into(),
        "/api/runs/..".into(),
        "/api/runs/%2e%2e%2fsecret-key".into(),
        format!("/api/runs/{older}/jobs/..%2F..%2F..%2Fetc%2Fpasswd"),
        format!("/api/runs/{older}/jobs/echo/outputs/..%2F..%2Fsecret-key"),
        format!("/api/runs/{older}/jobs/echo/outputs/said/..%2F..%2Fruns.db"),
        format!("/api/runs/{older}/jobs/echo/logs/..%2F..%2Fruns.db"),
        format!("/api/runs/{older}/jobs/joined/inputs/parts/..%2F..%2F..%2Fsecret-key"),
        format!("/api/runs/{older}/jobs/joined/inputs/parts/0/../../../../secret-key"),
        format!("/runs/{older}/jobs/%2e%2e%2f%2e%2e%2fsecret-key"),
    ];
    let secret_key = std::fs::read(store(&p).join("secret-key")).unwrap_or_default();
    for path in &attempts {
        let (status, text) = raw_get(&addr, path);
        assert!((400..500).contains(&status), "{path}: {status}\n{text}");
        assert!(!text.contains("root:x:0:0"), "{path} read /etc/passwd");
        assert!(
            !text.contains("SQLite format 3"),
            "{path} read the database"
        );
        if !secret_key.is_empty() {
            assert!(
                !text
                    .as_bytes()
                    .windows(secret_key.len())
                    .any(|w| w == secret_key),
                "{path} read the store's key"
            );
        }
    }
    // Nothing but GET (and HEAD).
    let mut sock = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        sock,
        "POST /api/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = sock.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");

    // Every page and every JSON view of both runs, and every download:
    // the secret's value is in none of them.
    let mut bodies = vec![s.get("/").text(), s.get("/api/runs").text()];
    for run in [&older, &newer] {
        bodies.push(s.get(&format!("/runs/{run}")).text());
        let view = s.get(&format!("/api/runs/{run}")).json();
        bodies.push(view.to_string());
        bodies.push(s.get(&format!("/api/runs/{run}/events")).text());
        for j in view["jobs"].as_array().unwrap() {
            let name = j["name"].as_str().unwrap();
            let enc: String = name
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            let page = s.get(&format!("/runs/{run}/jobs/{enc}"));
            assert_eq!(page.status, 200, "{name}");
            bodies.push(page.text());
            let job = s.get(&format!("/api/runs/{run}/jobs/{enc}")).json();
            for side in ["inputs", "outputs"] {
                for v in job[side].as_array().unwrap() {
                    if let Some(url) = v["value"]["url"].as_str() {
                        bodies.push(s.get(url).text());
                    }
                }
            }
            for log in ["stdout", "stderr"] {
                bodies.push(
                    s.get(&format!("/api/runs/{run}/jobs/{enc}/logs/{log}"))
                        .text(),
                );
            }
            bodies.push(job.to_string());
        }
    }
    for b in &bodies {
        assert!(!b.contains(SECRET), "a secret's value was shown:\n{b}");
    }
    let ctx_page = s.get(&format!("/runs/{older}/jobs/ctx")).text();
    assert!(ctx_page.contains("TOKEN") && ctx_page.contains("value hidden"));
}

#[test]
fn serving_writes_nothing_not_even_for_a_dead_run() {
    let (p, older, _) = two_runs();
    // A run whose process is killed: its records still say `running`.
    p.write(
        "slow.yaml",
        format!(
            "jobs:\n  nap:\n    uses: {}\n    args: [\"60000\"]\n",
            cairn_tests::SLEEP_MS
        ),
    );
    let started = run_cairn(p.path(), &["run", "slow.yaml", "--detach"], &[]);
    assert_eq!(started.code, 0, "{started:?}");
    let dead = started.stdout.trim().to_string();
    let pid: i64 = {
        let db = rusqlite::Connection::open_with_flags(
            store(&p).join("runs.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        db.query_row("SELECT pid FROM runs WHERE id = ?1", [&dead], |r| r.get(0))
            .unwrap()
    };
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(300));

    let before = snapshot(&store(&p));
    let s = Serve::start(&store(&p), &[]);
    let runs = s.get("/api/runs").json();
    let shown = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == dead.as_str())
        .unwrap();
    assert_eq!(shown["status"], "interrupted", "{runs}");
    let view = s.get(&format!("/api/runs/{dead}")).json();
    assert_eq!(view["jobs"][0]["status"], "interrupted");
    assert!(
        s.get(&format!("/runs/{dead}"))
            .text()
            .contains("interrupted")
    );
    assert!(
        s.get(&format!("/api/runs/{dead}/events"))
            .text()
            .contains("event: end")
    );
    for path in [
        "/".to_string(),
        format!("/runs/{older}"),
        format!("/runs/{older}/jobs/ctx"),
        format!("/api/runs/{older}/jobs/echo/outputs/said"),
        format!("/api/runs/{older}/dag.svg"),
        "/assets/style.css".into(),
    ] {
        assert_eq!(s.get(&path).status, 200, "{path}");
    }
    drop(s);
    assert_eq!(
        before,
        snapshot(&store(&p)),
        "the store changed while it was served"
    );
    // The records still say running: only a writer may record the death.
    let recorded: String = rusqlite::Connection::open_with_flags(
        store(&p).join("runs.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
    .query_row("SELECT status FROM runs WHERE id = ?1", [&dead], |r| {
        r.get(0)
    })
    .unwrap();
    assert_eq!(recorded, "running");
    let status = run_cairn(p.path(), &["status", &dead, "--json"], &[]).json();
    assert_eq!(
        status["run"]["status"], "interrupted",
        "a writer records it now"
    );
}

/// The node of job `name` in the page's DAG, as a JS expression.
fn node(name: &str) -> String {
    format!(
        "[...document.querySelectorAll('#dag .n, #dag rect.c')].find(n => n.querySelector('title').textContent.split('\\n')[0] === {name:?})"
    )
}

#[test]
fn the_run_page_draws_every_job_and_follows_a_live_run() {
    // The browser first, so that the page is up while the slow job runs.
    let browser = Browser::start();
    let p = Project::new();
    p.workflow(
        "jobs:
  first:
    uses: {NOOP}
  fan:
    uses: {SLEEP_MS}
    needs: [first]
    strategy:
      matrix:
        i: [1, 2, 3]
    args: [\"${{ matrix.i }}0\"]
  slow:
    uses: {SLEEP_MS}
    needs: [fan]
    args: [\"8000\"]
  after:
    uses: {NOOP}
    needs: [slow]
    args: [after]
",
    );
    let started = run_cairn(p.path(), &["run", "wf.yaml", "--detach"], &[]);
    assert_eq!(started.code, 0, "{started:?}");
    let id = started.stdout.trim().to_string();
    let s = Serve::start(&store(&p), &[]);
    browser.goto(&format!("{}runs/{id}", s.url));
    let shots = Browser::artifacts();

    // A node per job: six, the three of the matrix in one box.
    let nodes = browser.eval("return document.querySelectorAll('#dag .n, #dag rect.c').length;");
    assert_eq!(nodes, 6);
    assert_eq!(
        browser.eval("return document.querySelectorAll('#dag .gb').length;"),
        1
    );
    let slow = node("slow");
    browser.wait_for(
        "the slow job to be shown running",
        &format!("return {slow}.classList.contains('s-running');"),
        Duration::from_secs(30),
    );
    browser.screenshot(&shots.join("run-live-running.png"));
    // Mark this page: a reload would lose the mark.
    browser.eval("window.__cairnNoReload = 'same page'; return 1;");
    browser.wait_for(
        "the slow job to turn done without a reload",
        &format!("return {slow}.classList.contains('s-executed') && {}.classList.contains('s-executed');", node("after")),
        Duration::from_secs(60),
    );
    assert_eq!(browser.eval("return window.__cairnNoReload;"), "same page");
    assert!(
        browser
            .eval(&format!(
                "return {slow}.querySelector('text.d').textContent;"
            ))
            .as_str()
            .unwrap()
            .starts_with("done 8."),
        "its duration is shown"
    );
    browser.wait_for(
        "the run to be shown succeeded and the stream closed",
        "return document.getElementById('run-status').textContent === 'succeeded' && document.body.dataset.live === 'ended';",
        Duration::from_secs(10),
    );
    assert_eq!(
        browser.eval("return document.getElementById('c-executed').textContent;"),
        "6"
    );
    browser.screenshot(&shots.join("run-live-done.png"));

    // Clicking a node opens its job's page.
    browser.eval(&format!(
        "{}.dispatchEvent(new MouseEvent('click', {{bubbles: true}})); return 1;",
        node("fan[i=2]")
    ));
    browser.wait_for(
        "the job page of fan[i=2]",
        "return location.pathname.endsWith('/jobs/fan%5Bi%3D2%5D') && document.querySelector('h1').textContent.includes('fan[i=2]');",
        Duration::from_secs(10),
    );
}

#[test]
fn the_pages_show_runs_logs_metrics_labels_failures_and_why() {
    let (p, older, newer) = two_runs();
    let s = Serve::start(&store(&p), &[]);
    let browser = Browser::start();
    let shots = Browser::artifacts();

    // The runs list: newest first, with counts; filtered by state.
    browser.goto(&s.url);
    let ids =
        browser.eval("return [...document.querySelectorAll('tr.run')].map(r => r.dataset.run);");
    assert_eq!(ids, serde_json::json!([newer, older]));
    let cells = browser.eval(
        "return [...document.querySelectorAll('tr.run')[1].querySelectorAll('td.num')].map(c => c.textContent);",
    );
    assert_eq!(cells, serde_json::json!(["7", "6", "0", "1", "0"]));
    browser.screenshot(&shots.join("runs.png"));
    browser.goto(&format!("{}?status=succeeded", s.url));
    assert_eq!(
        browser.eval("return document.querySelectorAll('tr.run').length;"),
        0
    );

    // A run: every job drawn, the failed one listed; cached jobs say so.
    browser.goto(&format!("{}runs/{newer}", s.url));
    assert_eq!(
        browser.eval("return document.querySelectorAll('#dag .n, #dag rect.c').length;"),
        7
    );
    assert_eq!(
        browser.eval(&format!(
            "return {}.querySelector('text.d').textContent;",
            node("ctx")
        )),
        "cached"
    );
    assert_eq!(
        browser.eval("return document.querySelector('ul.failed').textContent;"),
        "bad"
    );
    browser.screenshot(&shots.join("run.png"));

    // The typed job: its task log, its metric plotted, its label, its secret by name.
    browser.goto(&format!("{}runs/{older}/jobs/ctx", s.url));
    let log = browser.eval("return document.getElementById('task-log').innerText;");
    assert!(log.as_str().unwrap().contains("hello a"), "{log}");
    let plot = browser.eval(
        "const p = document.querySelector('svg.plot[data-metric=\"loss\"]'); \
         const r = p.getBoundingClientRect(); \
         return [p.querySelector('polyline').points.length, r.width > 100 && r.height > 100];",
    );
    assert_eq!(plot, serde_json::json!([2, true]));
    assert!(
        browser
            .eval("return document.getElementById('labels').innerText;")
            .as_str()
            .unwrap()
            .contains("owner")
    );
    let secrets = browser.eval("return document.getElementById('secrets').innerText;");
    assert!(secrets.as_str().unwrap().contains("TOKEN"), "{secrets}");
    assert_eq!(
        browser.eval(&format!(
            "return document.documentElement.outerHTML.includes({SECRET:?});"
        )),
        false
    );
    browser.screenshot(&shots.join("job-typed.png"));

    // The failed job: its cause and its log.
    browser.goto(&format!("{}runs/{older}/jobs/bad", s.url));
    let failure = browser.eval("return document.getElementById('failure').innerText;");
    assert!(failure.as_str().unwrap().contains("exit"), "{failure}");
    let stderr = browser.eval("return document.getElementById('stderr').innerText;");
    assert!(
        stderr.as_str().unwrap().contains("about to fail"),
        "{stderr}"
    );
    browser.screenshot(&shots.join("job-failed.png"));

    // Why a job ran again, as `cairn why` says; and its output's download link.
    browser.goto(&format!("{}runs/{newer}/jobs/echo", s.url));
    let why = browser.eval("return document.getElementById('why').innerText;");
    assert!(
        why.as_str()
            .unwrap()
            .contains("argument 1 changed: \"first\" → \"second\""),
        "{why}"
    );
    let stdout = browser.eval("return document.getElementById('stdout').innerText;");
    assert!(stdout.as_str().unwrap().contains("second\ntwo"), "{stdout}");
    let href = browser.eval("return document.querySelector('#outputs a.dl').getAttribute('href');");
    let got = s.get(href.as_str().unwrap());
    assert_eq!(got.text(), "second\ntwo\n");
    assert!(
        got.header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    browser.screenshot(&shots.join("job-why.png"));
}

#[test]
fn plan_draws_the_web_views_picture_as_svg() {
    let p = Project::new();
    p.workflow(
        "jobs:
  a:
    uses: {ECHO_ARGS}
    args: [x]
    stdout: out
  b:
    uses: {ECHO_ARGS}
    strategy:
      matrix:
        i: [1, 2]
    args: [\"${{ matrix.i }}\"]
    needs: [a]
",
    );
    let svg = |p: &Project| {
        let run = p.cairn(&["plan", "wf.yaml", "--format", "svg"]);
        assert_eq!(run.code, 0, "{run:?}");
        run.stdout
    };
    let before = svg(&p);
    assert!(before.starts_with("<svg") && before.trim_end().ends_with("</svg>"));
    assert!(before.contains("<style>"), "standalone: its colours inside");
    assert_eq!(before.matches(r#" id="n"#).count(), 3);
    // `a` would run; `b` waits for it (its key is not known before).
    assert_eq!(before.matches(r#"class="n s-runs""#).count(), 1, "{before}");
    assert_eq!(
        before.matches(r#"class="n s-waits""#).count(),
        2,
        "{before}"
    );
    let run = p.cairn(&["run", "wf.yaml", "-q"]);
    assert_eq!(run.code, 0, "{run:?}");
    let after = svg(&p);
    assert_eq!(after.matches(r#"class="n s-cached""#).count(), 3, "{after}");
    // The web view draws the same boxes, in the same places.
    let s = Serve::start(&store(&p), &[]);
    let id = p.cairn(&["runs", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let served = s.get(&format!("/api/runs/{id}/dag.svg")).text();
    let rects = |svg: &str| -> Vec<String> {
        svg.split("<rect")
            .skip(1)
            .map(|r| r[..r.find('>').unwrap()].to_string())
            .collect()
    };
    assert_eq!(rects(&served), rects(&after));
}
