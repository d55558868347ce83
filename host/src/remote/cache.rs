//! A remote action cache stacked in front of the local one, as Buck2
//! stacks a caching executor: the local cache answers first; a local miss
//! asks the server (`GetActionResult`, in the job's own task), and a remote
//! hit fetches nothing: outputs stay on the server until a job that runs
//! here, a condition or a command needs them ([`Fetching`]), and a run
//! fetches its final outputs at its end. A job executed here is
//! uploaded in the background: its blobs (only those the server lacks,
//! gathered across jobs) and then its `ActionResult`.
//!
//! The server is help, not a dependency: a lookup that fails is a miss, an
//! upload that fails is reported, and the run finishes locally.

use crate::remote::action::{self, RESULT_FILE, RemoteSummary, ResultFile, SUMMARY_FILE};
use crate::remote::client::{Remote, RemoteError, Source};
use crate::run::executor::{Executor, JobRequest};
use crate::run::outcome::{Failure, Outcome};
use crate::store::action::{ActionInputs, CACHE_FORMAT, Manifest, Value};
use crate::store::cache::{ActionCache, LocalCache, Lookup, Summary, SummaryLookup};
use crate::store::digest::{ActionKey, RunKey};
use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long finished jobs gather before their uploads go out together.
const UPLOAD_GATHER: Duration = Duration::from_millis(5);

/// Says something to whoever runs cairn (the CLI prints it).
pub type Note = Arc<dyn Fn(&str) + Send + Sync>;

/// The local cache with a remote one behind it.
pub struct RemoteCache {
    local: LocalCache,
    remote: Arc<Remote>,
    uploads: mpsc::UnboundedSender<Upload>,
    note: Note,
    warned: Arc<AtomicBool>,
    failed: Arc<Mutex<Option<RemoteError>>>,
}

enum Upload {
    Job(Box<(ActionInputs, Manifest)>),
    Summary(Box<(RunKey, Summary)>),
    Flush(oneshot::Sender<()>),
}

impl RemoteCache {
    /// The local cache in front, `remote` behind. Call it within the run's
    /// tokio runtime: it starts the uploader.
    pub fn new(local: LocalCache, remote: Arc<Remote>, note: Note) -> Self {
        let (uploads, rx) = mpsc::unbounded_channel();
        let failed = Arc::new(Mutex::new(None));
        tokio::spawn(uploader(remote.clone(), rx, failed.clone(), note.clone()));
        RemoteCache {
            local,
            remote,
            uploads,
            note,
            warned: Arc::new(AtomicBool::new(false)),
            failed,
        }
    }

    /// Waits until every result inserted so far is on the server; the
    /// first upload that failed, if any did.
    pub async fn flush(&self) -> Result<(), RemoteError> {
        let (tx, rx) = oneshot::channel();
        if self.uploads.send(Upload::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
        match self.failed.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl ActionCache for RemoteCache {
    fn lookup(&self, key: &ActionKey, action: &ActionInputs) -> Lookup {
        if let Some(m) = self.local.get(key) {
            return Lookup::Hit(m);
        }
        let (remote, action) = (self.remote.clone(), action.clone());
        let (note, warned) = (self.note.clone(), self.warned.clone());
        Lookup::Pending(Box::pin(async move {
            match lookup(&remote, &action).await {
                Ok(found) => found,
                Err(e) => {
                    // Once per run: a server that is down would say it for every job.
                    if !warned.swap(true, Ordering::Relaxed) {
                        note(&format!(
                            "warning: remote cache lookups fail, so jobs run here: {e}"
                        ));
                    }
                    None
                }
            }
        }))
    }

    fn insert(&self, key: &ActionKey, action: &ActionInputs, m: &Manifest) -> io::Result<()> {
        self.local.put(key, m)?;
        let _ = self
            .uploads
            .send(Upload::Job(Box::new((action.clone(), m.clone()))));
        Ok(())
    }

    fn summary(&self, run: &RunKey) -> SummaryLookup {
        // A summary this store kept: every blob it names is here, or on the
        // server under a name this store knows (a remote hit's outputs).
        let known = |m: &Manifest| {
            m.format == CACHE_FORMAT
                && m.digests().iter().all(|d| {
                    self.remote.store().contains(d) || self.remote.remote_name(d).is_some()
                })
        };
        if let Some(s) = self.local.get_summary(run)
            && s.jobs.iter().all(|(_, m)| known(m))
        {
            return Box::pin(std::future::ready(Some(s)));
        }
        let (remote, run, local) = (self.remote.clone(), *run, self.local.clone());
        let (note, warned) = (self.note.clone(), self.warned.clone());
        Box::pin(async move {
            match remote_summary(&remote, &run).await {
                Ok(found) => {
                    // Kept here too: the next run of this store needs no round trip.
                    if let Some(s) = &found {
                        let _ = local.put_summary(&run, s);
                    }
                    found
                }
                Err(e) => {
                    if !warned.swap(true, Ordering::Relaxed) {
                        note(&format!(
                            "warning: remote cache lookups fail, so jobs run here: {e}"
                        ));
                    }
                    None
                }
            }
        })
    }

    fn remember(&self, run: &RunKey, summary: &Summary) -> io::Result<()> {
        self.local.put_summary(run, summary)?;
        let _ = self
            .uploads
            .send(Upload::Summary(Box::new((*run, summary.clone()))));
        Ok(())
    }
}

/// The remote summary of a run: a whole unchanged run answered in a
/// handful of round trips.
async fn remote_summary(remote: &Remote, run: &RunKey) -> Result<Option<Summary>, RemoteError> {
    let action = action::summary_action(run, remote);
    let Some(ar) = remote
        .get_action_result(&action.digest, &[SUMMARY_FILE])
        .await?
    else {
        return Ok(None);
    };
    let Some(file) = ar.output_files.iter().find(|f| f.path == SUMMARY_FILE) else {
        return Ok(None);
    };
    let digest = file
        .digest
        .clone()
        .ok_or_else(|| remote.error("reading a run summary", "it has no digest"))?;
    let bytes = remote.read_checked(&digest, &file.contents).await?;
    let s: RemoteSummary = serde_json::from_slice(&bytes)
        .map_err(|e| remote.error("reading a run summary", e.to_string()))?;
    if s.format != CACHE_FORMAT {
        return Ok(None);
    }
    remote.learn(&s.names)?;
    // The server keeps the blobs a job's action result names, but not those
    // a summary names (its result names only the summary): ask which are
    // still there, and keep only the jobs whose blobs all are.
    let digests: Vec<re::Digest> = s
        .names
        .values()
        .map(|(hash, size)| re::Digest {
            hash: hash.clone(),
            size_bytes: *size as i64,
        })
        .collect();
    let missing: std::collections::HashSet<String> = remote
        .find_missing(&digests)
        .await?
        .into_iter()
        .map(|d| d.hash)
        .collect();
    let present = |m: &Manifest| {
        m.digests().iter().all(|d| {
            s.names
                .get(d)
                .is_some_and(|(hash, _)| !missing.contains(hash))
        })
    };
    let jobs = s.jobs.iter().filter(|(_, m)| present(m)).cloned().collect();
    Ok(Some(Summary {
        format: s.format,
        jobs,
    }))
}

/// What storing a run summary puts on the server, and its entry.
fn summary_upload(
    remote: &Remote,
    run: &RunKey,
    summary: &Summary,
) -> Result<JobUpload, RemoteError> {
    let mut names = std::collections::BTreeMap::new();
    for (_, m) in &summary.jobs {
        for d in m.digests() {
            if let std::collections::btree_map::Entry::Vacant(e) = names.entry(d) {
                let r = remote.name_of(&d)?;
                e.insert((r.hash, r.size_bytes as u64));
            }
        }
    }
    let file = serde_json::to_vec(&RemoteSummary {
        format: CACHE_FORMAT,
        jobs: summary.jobs.clone(),
        names,
    })
    .expect("serialisable");
    let file_digest = remote.digest_of(&file);
    let action = action::summary_action(run, remote);
    let mut blobs: Vec<(re::Digest, Source)> = action
        .messages
        .into_iter()
        .map(|(d, b)| (d, Source::Bytes(Arc::new(b))))
        .collect();
    blobs.push((file_digest.clone(), Source::Bytes(Arc::new(file))));
    let ar = re::ActionResult {
        output_files: vec![re::OutputFile {
            path: SUMMARY_FILE.into(),
            digest: Some(file_digest),
            ..Default::default()
        }],
        ..Default::default()
    };
    Ok((blobs, action.digest, ar))
}

/// Reads a result file named in an action result: inline when the server
/// sent it so, else through the batching reader; checked against its digest.
pub async fn read_result_file(
    remote: &Remote,
    ar: &re::ActionResult,
) -> Result<ResultFile, RemoteError> {
    let file = action::result_file(ar).ok_or_else(|| {
        remote.error(
            "reading an action result",
            format!("it names no {RESULT_FILE}: not a Cairn action"),
        )
    })?;
    let digest = file.digest.clone().ok_or_else(|| {
        remote.error(
            "reading an action result",
            format!("{RESULT_FILE} has no digest"),
        )
    })?;
    let bytes = remote.read_checked(&digest, &file.contents).await?;
    let result =
        action::decode_result(&bytes).map_err(|e| remote.error("reading an action result", e))?;
    remote.learn(&result.names)?;
    Ok(result)
}

async fn lookup(remote: &Remote, action: &ActionInputs) -> Result<Option<Manifest>, RemoteError> {
    let encoded = action::encode(action, None, remote)
        .map_err(|e| remote.error("naming a job's inputs", e))?;
    let Some(ar) = remote
        .get_action_result(&encoded.digest, &[RESULT_FILE])
        .await?
    else {
        return Ok(None);
    };
    let result = read_result_file(remote, &ar).await?;
    let Some(m) = result.manifest else {
        return Ok(None);
    };
    Ok((m.format == CACHE_FORMAT).then_some(m))
}

/// A job's result file, naming every blob its manifest names.
pub fn result_file(remote: &Remote, m: &Manifest) -> Result<ResultFile, RemoteError> {
    let mut names = std::collections::BTreeMap::new();
    for d in m.digests() {
        let r = remote.name_of(&d)?;
        names.insert(d, (r.hash, r.size_bytes as u64));
    }
    Ok(ResultFile {
        format: CACHE_FORMAT,
        manifest: Some(m.clone()),
        failure: None,
        names,
    })
}

/// The blobs of one executed job, its action's digest and its result.
type JobUpload = (Vec<(re::Digest, Source)>, re::Digest, re::ActionResult);

/// Everything one executed job puts on the server, and its entry.
fn job_upload(
    remote: &Remote,
    action: &ActionInputs,
    m: &Manifest,
) -> Result<JobUpload, RemoteError> {
    let encoded = action::encode(action, None, remote)
        .map_err(|e| remote.error("naming a job's inputs", e))?;
    let result = result_file(remote, m)?;
    let (ar, (file_digest, file)) =
        action::action_result(&result, remote).map_err(|e| remote.error("encoding a result", e))?;
    let (digest, mut blobs) = encoded.into_uploads();
    for (d, (hash, size)) in &result.names {
        blobs.push((
            re::Digest {
                hash: hash.clone(),
                size_bytes: *size as i64,
            },
            Source::Stored(*d),
        ));
    }
    blobs.push((file_digest, Source::Bytes(Arc::new(file))));
    Ok((blobs, digest, ar))
}

/// Gathers executed jobs for a moment, uploads the blobs the server lacks
/// for all of them at once, then their action results.
async fn uploader(
    remote: Arc<Remote>,
    mut rx: mpsc::UnboundedReceiver<Upload>,
    failed: Arc<Mutex<Option<RemoteError>>>,
    note: Note,
) {
    let fail = |e: RemoteError| {
        let mut f = failed.lock().unwrap();
        if f.is_none() {
            note(&format!(
                "warning: remote cache uploads fail, results stay local: {e}"
            ));
            *f = Some(e);
        }
    };
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(UPLOAD_GATHER).await;
        let mut msgs = vec![first];
        while let Ok(m) = rx.try_recv() {
            msgs.push(m);
        }
        let mut blobs = Vec::new();
        let mut entries = Vec::new();
        let mut flushes = Vec::new();
        for msg in msgs {
            match msg {
                Upload::Job(job) => match job_upload(&remote, &job.0, &job.1) {
                    Ok((b, digest, ar)) => {
                        blobs.extend(b);
                        entries.push((digest, ar));
                    }
                    Err(e) => fail(e),
                },
                // A summary vouches for every blob its jobs name: not sent
                // once an upload has failed (the next run looks jobs up).
                Upload::Summary(_) if failed.lock().unwrap().is_some() => {}
                Upload::Summary(job) => match summary_upload(&remote, &job.0, &job.1) {
                    Ok((b, digest, ar)) => {
                        blobs.extend(b);
                        entries.push((digest, ar));
                    }
                    Err(e) => fail(e),
                },
                Upload::Flush(tx) => flushes.push(tx),
            }
        }
        if !entries.is_empty() {
            match remote.upload(blobs).await {
                Ok(()) => {
                    let updates = entries
                        .iter()
                        .map(|(d, ar)| remote.update_action_result(d, ar));
                    for r in futures_util::future::join_all(updates).await {
                        if let Err(e) = r {
                            fail(e);
                        }
                    }
                }
                Err(e) => fail(e),
            }
        }
        for tx in flushes {
            let _ = tx.send(());
        }
    }
}

/// An executor that first fetches, from the remote, the inputs of a job
/// that the local store lacks (outputs of jobs answered by the remote
/// cache), then runs it with the executor it wraps.
pub struct Fetching {
    inner: Arc<dyn Executor>,
    remote: Arc<Remote>,
}

impl Fetching {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Executor>, remote: Arc<Remote>) -> Self {
        Fetching { inner, remote }
    }
}

impl Executor for Fetching {
    fn execute(&self, req: JobRequest) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(async move {
            let mut wanted = vec![req.component.digest];
            wanted.extend(req.action.inputs.values().flat_map(Value::digests));
            if let Err(e) = self.remote.fetch(&wanted).await {
                return Outcome::Failure(Failure::host("fetching the job's inputs", e));
            }
            self.inner.execute(req).await
        })
    }
}
