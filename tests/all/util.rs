//! A scratch project for one test: a temp directory with a workflow file,
//! input files, and helpers to run the real `cairn` binary or the library.

use cairn::ExecLimits;
use cairn::{Event, EventSink, RunOptions, RunReport};
use cairn::{JobId, Overrides, Plan};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Project {
    pub dir: tempfile::TempDir,
}

/// What the `cairn` binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Lines of stderr that report a job's final state, e.g. "cached   a".
    pub fn status_of(&self, job: &str) -> Option<&str> {
        self.stderr.lines().find_map(|l| {
            let mut words = l.split_whitespace();
            let status = words.next()?;
            // `failed NAME: cause`
            let name = words.next()?.trim_end_matches(':');
            (name == job && ["done", "cached", "failed", "skipped"].contains(&status))
                .then_some(status)
        })
    }
}

impl Run {
    /// stdout parsed as JSON (for `--json` commands).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Project {
    pub fn new() -> Self {
        Project {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Writes `wf.yaml`, replacing `{GUEST}` placeholders (upper-case guest
    /// names) with the guest components' absolute paths.
    pub fn workflow(&self, yaml: &str) -> PathBuf {
        let mut text = yaml.to_string();
        for (name, path) in cairn_tests::ALL {
            text = text.replace(&format!("{{{}}}", name.to_uppercase()), path);
        }
        self.write("wf.yaml", text)
    }

    /// Runs the real `cairn` binary in the project directory.
    pub fn cairn(&self, args: &[&str]) -> Run {
        run_cairn(self.path(), args, &[])
    }
}

pub fn run_cairn(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.args(args).current_dir(cwd).env_remove("CAIRN_STORE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Records every scheduler event, for order and overlap checks.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<Event>>,
}

impl EventSink for Recorder {
    fn event(&self, _plan: &Plan, event: &Event) {
        self.events.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    /// Position of the first event matching `f`.
    pub fn position(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .position(f)
            .expect("event happened")
    }

    pub fn running(&self, id: JobId) -> usize {
        self.position(|e| matches!(e, Event::Running(j, _) if *j == id))
    }

    pub fn done(&self, id: JobId) -> usize {
        self.position(|e| matches!(e, Event::Done(j, ..) if *j == id))
    }
}

/// Runs a workflow through the library (not the binary), recording events.
pub fn run_library(
    wf: &Path,
    jobs: usize,
    keep_going: bool,
) -> (Arc<Plan>, RunReport, Arc<Recorder>) {
    let loaded = cairn::load(wf, &Overrides::default()).unwrap();
    let (store, runtime) = cairn::open(&loaded.dir.join(".cairn")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(jobs + 1)
        .enable_all()
        .build()
        .unwrap();
    let prepared = Arc::new(cairn::prepare(&loaded, &store, &runtime, &rt, &mut |_| {}).unwrap());
    let recorder = Arc::new(Recorder::default());
    let opts = RunOptions {
        jobs,
        keep_going,
        no_cache: true,
        limits: ExecLimits {
            memory: 512 << 20,
            timeout: Duration::from_secs(60),
            ..ExecLimits::default()
        },
        secrets: Default::default(),
        secret_key: [0; 32],
    };
    let report = rt.block_on(cairn::execute(
        &loaded,
        &prepared,
        store,
        runtime,
        recorder.clone(),
        &opts,
        None,
    ));
    (loaded.plan.clone(), report, recorder)
}

/// The id of the job called `name` in the plan.
pub fn id(plan: &Plan, name: &str) -> JobId {
    plan.jobs
        .iter()
        .find(|j| j.name == name)
        .expect("job exists")
        .id
}
