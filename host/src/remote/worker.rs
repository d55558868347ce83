//! Executing Cairn actions from a REAPI server: `cairn worker`, a bot for
//! the Remote Workers API that leases actions and runs each in the same
//! sandbox as a local job, and `cairn action`, the action's own command,
//! which any REAPI worker with `cairn` installed runs in the action's input
//! root. Both decode the job from `cairn.json` and share [`run_spec`].

use crate::remote::action::{
    self, COMPONENT_FILE, RESULT_FILE, ResultFile, RunSettings, SPEC_FILE, Spec,
};
use crate::remote::bots::{
    BotSession, BotStatus, BotsClient, CreateBotSessionRequest, Device, Lease, LeaseState,
    Property, UpdateBotSessionRequest, Worker,
};
use crate::remote::client::{Remote, RemoteError, Source};
use crate::run::executor::{ComponentRef, Executor, JobRequest};
use crate::run::outcome::{Failure, Outcome};
use crate::sandbox::executor::LocalExecutor;
use crate::sandbox::runtime::Runtime;
use crate::store::action::{CACHE_FORMAT, SandboxKey, Value};
use crate::store::blobs::Store;
use crate::store::digest::Digest;
use crate::workflow::typed::TaskKind;
use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::{protobuf, rpc};
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Runs a decoded job whose component and inputs are in `store`: the
/// request a local run would make, to the same executor.
pub async fn run_spec(spec: &Spec, store: &Arc<Store>, runtime: &Arc<Runtime>) -> Outcome {
    let a = &spec.action;
    let component = ComponentRef {
        path: store.blob_path(&a.component),
        digest: a.component,
    };
    let typed = match &a.call {
        None => None,
        Some(call) => match runtime.inspect(&component, Some(call)).await {
            Ok(TaskKind::Typed(sig)) => Some(sig),
            Ok(TaskKind::Unusable(why)) => {
                return Outcome::Failure(Failure::new(
                    crate::run::outcome::FailureKind::Instantiation,
                    why,
                ));
            }
            Ok(TaskKind::Command) => {
                return Outcome::Failure(Failure::new(
                    crate::run::outcome::FailureKind::Instantiation,
                    format!("the component is a command, not a typed task exporting `{call}`"),
                ));
            }
            Err(f) => return Outcome::Failure(f),
        },
    };
    let run = spec.run.clone().unwrap_or(RunSettings {
        name: "job".into(),
        limits: Default::default(),
    });
    let req = JobRequest {
        id: 0,
        name: run.name,
        component,
        key: a.key(),
        hermetic: a.sandbox == SandboxKey::new(true).profile,
        typed,
        action: a.clone(),
        limits: run.limits,
        secrets: BTreeMap::new(),
    };
    LocalExecutor::new(runtime.clone(), store.clone())
        .execute(req)
        .await
}

/// The result file of an outcome, naming its blobs for `remote` (or, with
/// no remote, by blake3).
fn result_of(
    outcome: &Outcome,
    name: &dyn Fn(&Digest) -> Result<re::Digest, RemoteError>,
) -> Result<ResultFile, RemoteError> {
    let (manifest, failure, digests) = match outcome {
        Outcome::Success(m) => (Some(m.clone()), None, m.digests()),
        Outcome::Failure(f) => (
            None,
            Some(f.clone()),
            [f.stdout, f.stderr].into_iter().flatten().collect(),
        ),
    };
    let mut names = BTreeMap::new();
    for d in digests {
        let r = name(&d)?;
        names.insert(d, (r.hash, r.size_bytes as u64));
    }
    Ok(ResultFile {
        format: CACHE_FORMAT,
        manifest,
        failure,
        names,
    })
}

fn place(prefix: &str, v: &Value, out: &mut Vec<(String, Digest)>) {
    match v {
        Value::Blob { digest, .. } => out.push((prefix.to_string(), *digest)),
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                place(&format!("{prefix}/{i}"), item, out);
            }
        }
    }
}

/// Every file the input root must hold besides `cairn.json`, with the blob
/// the spec says it is.
fn expected_files(spec: &Spec) -> Vec<(String, Digest)> {
    let mut files = vec![(COMPONENT_FILE.to_string(), spec.action.component)];
    for (name, v) in &spec.action.inputs {
        place(&format!("in/{name}"), v, &mut files);
    }
    files
}

/// `cairn action`: runs the action whose input root is `dir` (the current
/// directory of a REAPI worker), writing `out/<name>` and `cairn.out.json`
/// there. Every input file is checked against the blake3 digest the spec
/// gives. Returns the job's outcome.
pub async fn run_action_dir(
    dir: &Path,
    store: &Arc<Store>,
    runtime: &Arc<Runtime>,
) -> Result<Outcome, String> {
    let spec_bytes = std::fs::read(dir.join(SPEC_FILE)).map_err(|e| format!("{SPEC_FILE}: {e}"))?;
    let spec: Spec =
        serde_json::from_slice(&spec_bytes).map_err(|e| format!("{SPEC_FILE}: {e}"))?;
    if spec.format != CACHE_FORMAT {
        return Err(format!(
            "{SPEC_FILE} is of format {}, this cairn runs {CACHE_FORMAT}",
            spec.format
        ));
    }
    for (path, want) in expected_files(&spec) {
        let stored = store
            .put_host_file(&dir.join(&path))
            .map_err(|e| format!("{path}: {e}"))?;
        if stored.digest != want {
            return Err(format!(
                "{path}: its bytes are not the blob {want} that {SPEC_FILE} names"
            ));
        }
    }
    let outcome = run_spec(&spec, store, runtime).await;
    let write = |path: &Path, d: &Digest| -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, store.read(d)?)
    };
    if let Outcome::Success(m) = &outcome {
        for (path, d) in action::output_paths(&m.outputs) {
            write(&dir.join(&path), &d).map_err(|e| format!("{path}: {e}"))?;
        }
    }
    // Named as the server names blobs (the action's command says how), so
    // that a client can fetch any of them.
    let blake3 = std::env::var(action::DIGEST_ENV).is_ok_and(|f| f == "blake3");
    let result = result_of(&outcome, &|d| {
        let bytes = store.read(d).map_err(|e| RemoteError {
            server: "(none)".into(),
            what: format!("reading blob {d}"),
            code: None,
            message: e.to_string(),
        })?;
        Ok(re::Digest {
            hash: if blake3 {
                d.to_hex()
            } else {
                crate::store::digest::Sha256::of(&bytes).to_hex()
            },
            size_bytes: bytes.len() as i64,
        })
    })
    .map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join(RESULT_FILE),
        serde_json::to_vec(&result).expect("serialisable"),
    )
    .map_err(|e| format!("{RESULT_FILE}: {e}"))?;
    Ok(outcome)
}

/// Executes one leased action: fetches its tree and inputs (into the
/// worker's store, checked against both names), runs it, uploads its
/// outputs and logs, and returns its `ActionResult`.
pub async fn execute_action(
    remote: &Arc<Remote>,
    runtime: &Arc<Runtime>,
    action: &re::Action,
) -> Result<re::ActionResult, RemoteError> {
    let root = action
        .input_root_digest
        .clone()
        .ok_or_else(|| remote.error("reading a lease", "its action has no input root"))?;
    // The tree level by level: every directory of a level is read in one
    // gathered batch.
    let mut files: HashMap<String, re::Digest> = HashMap::new();
    let mut level = vec![(String::new(), root)];
    while !level.is_empty() {
        let reads =
            futures_util::future::join_all(level.iter().map(|(_, d)| remote.read_checked(d, &[])))
                .await;
        let mut next = Vec::new();
        for ((prefix, _), bytes) in level.iter().zip(reads) {
            let dir = re::Directory::decode(&bytes?[..])
                .map_err(|e| remote.error("reading an input tree", e.to_string()))?;
            for f in dir.files {
                files.insert(format!("{prefix}{}", f.name), f.digest.unwrap_or_default());
            }
            for sub in dir.directories {
                next.push((
                    format!("{prefix}{}/", sub.name),
                    sub.digest.unwrap_or_default(),
                ));
            }
        }
        level = next;
    }
    let spec_digest = files.get(SPEC_FILE).ok_or_else(|| {
        remote.error(
            "reading a lease",
            format!("its input root has no {SPEC_FILE}: not a Cairn action"),
        )
    })?;
    let spec_bytes = remote.read_checked(spec_digest, &[]).await?;
    let spec: Spec = serde_json::from_slice(&spec_bytes)
        .map_err(|e| remote.error(format!("reading {SPEC_FILE}"), e.to_string()))?;
    let mut wanted = Vec::new();
    for (path, b3) in expected_files(&spec) {
        let r = files.get(&path).ok_or_else(|| {
            remote.error("reading a lease", format!("its input root has no {path}"))
        })?;
        wanted.push((b3, r.clone()));
    }
    remote.fetch_named(&wanted).await?;
    let outcome = run_spec(&spec, remote.store(), runtime).await;
    let result = result_of(&outcome, &|d| remote.name_of(d))?;
    let mut blobs: Vec<(re::Digest, Source)> = result
        .names
        .iter()
        .map(|(b3, (hash, size))| {
            (
                re::Digest {
                    hash: hash.clone(),
                    size_bytes: *size as i64,
                },
                Source::Stored(*b3),
            )
        })
        .collect();
    let (ar, (file_digest, file)) = action::action_result(&result, remote.as_ref())
        .map_err(|e| remote.error("encoding a result", e))?;
    blobs.push((file_digest, Source::Bytes(Arc::new(file))));
    remote.upload(blobs).await?;
    Ok(ar)
}

/// How `cairn worker` runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Leases run at once.
    pub slots: usize,
    /// The bot's id (unique per process).
    pub bot_id: String,
}

/// Time a server may hold an `UpdateBotSession` open waiting for work.
const POLL: Duration = Duration::from_secs(30);
/// How often a busy bot reports (its heartbeat), within the server's keepalive.
const HEARTBEAT: Duration = Duration::from_secs(2);

type Done = (String, Result<re::ActionResult, RemoteError>);

/// The bot: opens a session, takes leases up to `slots`, runs each, and
/// reports it completed; returns only when the server cannot be reached
/// (after retries) or refuses the bot.
pub async fn serve(
    remote: Arc<Remote>,
    runtime: Arc<Runtime>,
    opts: WorkerOptions,
    note: &(dyn Fn(&str) + Sync),
) -> Result<(), RemoteError> {
    let mut bots = BotsClient::new(remote.channel());
    let worker = Worker {
        devices: vec![Device {
            handle: "cairn".into(),
            properties: action::PLATFORM
                .iter()
                .map(|(k, v)| Property {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
        }],
        properties: Vec::new(),
        configs: vec![Property {
            key: "capacity".into(),
            value: opts.slots.to_string(),
        }],
    };
    let fresh = BotSession {
        bot_id: opts.bot_id.clone(),
        status: BotStatus::Ok as i32,
        worker: Some(worker),
        ..Default::default()
    };
    let create = |bots: &mut BotsClient, fresh: BotSession| {
        let req = remote.request(
            CreateBotSessionRequest {
                parent: remote.instance().to_string(),
                bot_session: Some(fresh),
            },
            POLL,
        );
        let mut bots = bots.clone();
        async move { bots.create_bot_session(req).await }
    };
    let mut session = create(&mut bots, fresh.clone())
        .await
        .map_err(|s| remote.status("CreateBotSession", &s))?
        .into_inner();
    note(&format!(
        "worker {} serving {} ({} slots)",
        opts.bot_id,
        remote.url(),
        opts.slots
    ));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    // Leases this bot is working on, by id.
    let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut finished: Vec<Done> = Vec::new();
    // Leases done here, reported as completed until the server no longer
    // lists them: an answer lost with a call cut short must not get a job
    // run twice.
    let mut completed: HashMap<String, Lease> = HashMap::new();
    let mut failures = 0u32;
    loop {
        for (id, _) in &finished {
            running.remove(id);
        }
        for (id, r) in finished.drain(..) {
            let (status, result) = match r {
                Ok(ar) => (
                    rpc::Status {
                        code: 0,
                        ..Default::default()
                    },
                    Some(protobuf::Any {
                        type_url:
                            "type.googleapis.com/build.bazel.remote.execution.v2.ActionResult"
                                .into(),
                        value: ar.encode_to_vec(),
                    }),
                ),
                Err(e) => {
                    note(&format!("lease {id} could not run here: {e}"));
                    // INTERNAL: the server hands the job to another attempt.
                    (
                        rpc::Status {
                            code: 13,
                            message: e.to_string(),
                            ..Default::default()
                        },
                        None,
                    )
                }
            };
            completed.insert(
                id.clone(),
                Lease {
                    id,
                    state: LeaseState::Completed as i32,
                    status: Some(status),
                    result,
                    ..Default::default()
                },
            );
        }
        // New leases (from CreateBotSession as from UpdateBotSession): start them.
        let offered: Vec<Lease> = session.leases.clone();
        for l in &offered {
            if l.state != LeaseState::Active as i32 && l.state != LeaseState::Pending as i32 {
                continue;
            }
            if running.contains_key(&l.id) || completed.contains_key(&l.id) {
                continue;
            }
            let Some(payload) = &l.payload else { continue };
            let action = match re::Action::decode(&payload.value[..]) {
                Ok(a) => a,
                Err(e) => {
                    finished.push((
                        l.id.clone(),
                        Err(remote.error("reading a lease", e.to_string())),
                    ));
                    continue;
                }
            };
            note(&format!("lease {}: running", l.id));
            let (remote, runtime, tx, id) = (
                remote.clone(),
                runtime.clone(),
                done_tx.clone(),
                l.id.clone(),
            );
            running.insert(
                l.id.clone(),
                tokio::spawn(async move {
                    let r = execute_action(&remote, &runtime, &action).await;
                    let _ = tx.send((id, r));
                }),
            );
        }
        // Leases the server no longer lists were withdrawn: stop them.
        let listed: std::collections::HashSet<&String> =
            session.leases.iter().map(|l| &l.id).collect();
        running.retain(|id, h| {
            let keep = listed.contains(id) || h.is_finished();
            if !keep {
                h.abort();
            }
            keep
        });
        // The leases as the bot sees them: running ones ACTIVE, finished
        // ones COMPLETED with their result.
        let mut leases: Vec<Lease> = Vec::new();
        for l in &session.leases {
            if running.contains_key(&l.id) {
                leases.push(Lease {
                    state: LeaseState::Active as i32,
                    ..l.clone()
                });
            }
        }
        leases.extend(completed.values().cloned());
        let mut update = session.clone();
        update.leases = leases;
        let busy = running.len() >= opts.slots;
        let req = remote.request(
            UpdateBotSessionRequest {
                name: session.name.clone(),
                bot_session: Some(update),
                update_mask: None,
            },
            if busy { HEARTBEAT * 5 } else { POLL },
        );
        let mut call = bots.clone();
        let poll = call.update_bot_session(req);
        tokio::pin!(poll);
        let answer = tokio::select! {
            r = &mut poll => Some(r),
            // A lease finished while the server held the call open: report
            // it now rather than when the call returns.
            Some(d) = done_rx.recv(), if !busy => { finished.push(d); None }
        };
        let Some(answer) = answer else {
            continue;
        };
        match answer {
            Ok(r) => {
                failures = 0;
                session = r.into_inner();
                let listed: std::collections::HashSet<&String> =
                    session.leases.iter().map(|l| &l.id).collect();
                completed.retain(|id, _| listed.contains(id));
            }
            Err(s)
                if s.code() == tonic::Code::InvalidArgument
                    || s.code() == tonic::Code::NotFound =>
            {
                // The server dropped this session (it thought the bot dead):
                // its leases went to others. Start again.
                note(&format!(
                    "the server dropped this bot's session ({}); opening a new one",
                    s.message()
                ));
                for (_, h) in running.drain() {
                    h.abort();
                }
                session = create(&mut bots, fresh.clone())
                    .await
                    .map_err(|s| remote.status("CreateBotSession", &s))?
                    .into_inner();
                continue;
            }
            Err(s) => {
                failures += 1;
                if failures > 5 {
                    return Err(remote.status("UpdateBotSession", &s));
                }
                tokio::time::sleep(Duration::from_millis(200 << failures)).await;
                continue;
            }
        }
        // Collect what finished; when every slot is busy, wait for one (or
        // a heartbeat) before reporting again.
        while let Ok(d) = done_rx.try_recv() {
            finished.push(d);
        }
        if running.len() >= opts.slots
            && finished.is_empty()
            && let Ok(Some(d)) = tokio::time::timeout(HEARTBEAT, done_rx.recv()).await
        {
            finished.push(d);
        }
    }
}
