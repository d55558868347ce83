//! One client per process for a REAPI server: a tonic channel (cheap to
//! clone, timeouts and keep-alive set once on the endpoint), the server's
//! capabilities, and the CAS and action cache calls Cairn makes, each with
//! a deadline, retried only for `UNAVAILABLE` and `RESOURCE_EXHAUSTED` with
//! backoff, and counted.
//!
//! Reads are gathered for a couple of milliseconds and sent together
//! (`BatchReadBlobs`, within the server's `max_batch_total_size_bytes`;
//! ByteStream above it), as Bazel's and Buck2's clients do; uploads ask
//! `FindMissingBlobs` for the whole set first and send only what is
//! missing. Every failure is a [`RemoteError`] naming the server: an
//! infrastructure error, never a failed job.

use crate::remote::action::Namer;
use crate::store::blobs::Store;
use crate::store::digest::{BlobHasher, Digest, Sha256};
use crate::store::sha256::Names;
use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::bytestream;
use re::action_cache_client::ActionCacheClient;
use re::capabilities_client::CapabilitiesClient;
use re::content_addressable_storage_client::ContentAddressableStorageClient;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// Where a remote is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteSpec {
    /// `grpc://host:port` (or `grpcs://` for TLS).
    pub url: String,
    /// The REAPI instance name ("" for the default).
    pub instance: String,
    /// Metadata sent with every call (`authorization: Bearer …`).
    pub headers: Vec<(String, String)>,
}

/// A call to the server failed: the server, what was asked, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("REAPI server {server}: {what}: {message}")]
pub struct RemoteError {
    /// The server's URL.
    pub server: String,
    /// What was asked (`GetActionResult`, "reading blob …").
    pub what: String,
    /// The gRPC status code, when the server answered.
    pub code: Option<Code>,
    /// Why.
    pub message: String,
}

/// How blobs are named on this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestFn {
    /// BLAKE3: the local names.
    Blake3,
    /// SHA-256, mapped from the local names (see `store::sha256`).
    Sha256,
}

impl DigestFn {
    fn proto(self) -> i32 {
        match self {
            DigestFn::Blake3 => re::digest_function::Value::Blake3 as i32,
            DigestFn::Sha256 => re::digest_function::Value::Sha256 as i32,
        }
    }
}

/// RPCs made, by method: how the benchmarks count round trips.
#[derive(Debug, Default)]
pub struct Stats {
    counts: [AtomicU64; METHODS.len()],
}

/// The methods [`Stats`] counts, in its order.
pub const METHODS: [&str; 10] = [
    "GetCapabilities",
    "GetActionResult",
    "UpdateActionResult",
    "FindMissingBlobs",
    "BatchUpdateBlobs",
    "BatchReadBlobs",
    "ByteStream.Read",
    "ByteStream.Write",
    "Execute",
    "WaitExecution",
];

impl Stats {
    fn count(&self, method: &str) {
        if let Some(i) = METHODS.iter().position(|m| *m == method) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Calls so far, by method, those made at least once.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        METHODS
            .iter()
            .zip(&self.counts)
            .map(|(m, c)| (*m, c.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// All calls so far.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// Where the bytes of a blob to upload come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Bytes in hand (a serialised message, a result file).
    Bytes(Arc<Vec<u8>>),
    /// A blob in the local store.
    Stored(Digest),
}

/// The client. Cheap to share: hold it in an `Arc`.
pub struct Remote {
    spec: RemoteSpec,
    channel: Channel,
    headers: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    digest_fn: DigestFn,
    max_batch: usize,
    exec_enabled: bool,
    store: Arc<Store>,
    stats: Arc<Stats>,
    reads: mpsc::UnboundedSender<ReadRequest>,
    uploads: mpsc::UnboundedSender<UploadRequest>,
    /// Remote names learnt from result files in this process.
    known: std::sync::Mutex<HashMap<Digest, re::Digest>>,
    in_flight: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.spec.url)
            .field("instance", &self.spec.instance)
            .field("digest_fn", &self.digest_fn)
            .finish()
    }
}

struct UploadRequest {
    blobs: Vec<(re::Digest, Source)>,
    reply: oneshot::Sender<Result<(), RemoteError>>,
}

struct ReadRequest {
    digest: re::Digest,
    reply: oneshot::Sender<Result<Vec<u8>, RemoteError>>,
}

/// Deadline of one small call.
const CALL_DEADLINE: Duration = Duration::from_secs(60);
/// How long connecting (and asking for capabilities) may take.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);
/// Attempts of a call that fails with a retryable status.
const ATTEMPTS: u32 = 4;
/// How long reads gather before they are sent together.
const GATHER: Duration = Duration::from_millis(2);
/// What one blob adds to a batch message besides its bytes: its digest
/// (a 64-character hash and a size), a status, and protobuf framing.
const ENTRY_OVERHEAD: usize = 160;
/// Calls in flight at once from one process.
const MAX_IN_FLIGHT: usize = 32;
/// ByteStream chunk size.
const CHUNK: usize = 1 << 20;
/// Digests per `FindMissingBlobs` call.
const FIND_MISSING_CHUNK: usize = 10_000;

impl Remote {
    /// Connects and asks for the server's capabilities, failing at once
    /// (within a few seconds) when the server cannot be reached. Call it
    /// within the tokio runtime that will use it: it starts the reader.
    pub async fn connect(spec: RemoteSpec, store: Arc<Store>) -> Result<Arc<Remote>, RemoteError> {
        let err = |what: &str, message: String| RemoteError {
            server: spec.url.clone(),
            what: what.to_string(),
            code: None,
            message,
        };
        let url = if let Some(rest) = spec.url.strip_prefix("grpc://") {
            format!("http://{rest}")
        } else if let Some(rest) = spec.url.strip_prefix("grpcs://") {
            format!("https://{rest}")
        } else {
            return Err(err(
                "connecting",
                "expected a URL such as grpc://127.0.0.1:8980 (or grpcs:// for TLS)".into(),
            ));
        };
        let mut endpoint = Endpoint::from_shared(url)
            .map_err(|e| err("connecting", e.to_string()))?
            .connect_timeout(CONNECT_DEADLINE)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true)
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(16 << 20));
        if spec.url.starts_with("grpcs://") {
            endpoint = endpoint
                .tls_config(tonic::transport::ClientTlsConfig::new().with_webpki_roots())
                .map_err(|e| err("setting up TLS", e.to_string()))?;
        }
        let channel = tokio::time::timeout(CONNECT_DEADLINE, endpoint.connect())
            .await
            .map_err(|_| {
                err(
                    "connecting",
                    format!("no answer within {CONNECT_DEADLINE:?}"),
                )
            })?
            .map_err(|e| err("connecting", error_chain(&e)))?;
        let mut headers = Vec::new();
        for (k, v) in &spec.headers {
            let key =
                AsciiMetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()).map_err(|_| {
                    err(
                        "setting headers",
                        format!("`{k}` is not a valid header name"),
                    )
                })?;
            let value = AsciiMetadataValue::try_from(v.as_str()).map_err(|_| {
                err(
                    "setting headers",
                    format!("the value of `{k}` is not valid"),
                )
            })?;
            headers.push((key, value));
        }
        let stats = Arc::new(Stats::default());
        let (reads, rx) = mpsc::unbounded_channel();
        let (uploads, up_rx) = mpsc::unbounded_channel();
        let mut remote = Remote {
            spec,
            channel,
            headers,
            digest_fn: DigestFn::Sha256,
            max_batch: 4 << 20,
            exec_enabled: false,
            store,
            stats,
            reads,
            uploads,
            known: Default::default(),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        };
        let r = &remote;
        let caps = r
            .call("GetCapabilities", || async {
                CapabilitiesClient::new(r.channel.clone())
                    .get_capabilities(r.request(
                        re::GetCapabilitiesRequest {
                            instance_name: r.spec.instance.clone(),
                        },
                        CONNECT_DEADLINE,
                    ))
                    .await
            })
            .await?;
        let cache = caps.cache_capabilities.unwrap_or_default();
        let blake3 = re::digest_function::Value::Blake3 as i32;
        remote.digest_fn = if cache.digest_functions.contains(&blake3) {
            DigestFn::Blake3
        } else {
            DigestFn::Sha256
        };
        if cache.max_batch_total_size_bytes > 0 {
            // Room for the request's own framing.
            remote.max_batch = (cache.max_batch_total_size_bytes as usize).saturating_sub(64 << 10);
        }
        remote.exec_enabled = caps.execution_capabilities.is_some_and(|e| e.exec_enabled);
        if remote.digest_fn == DigestFn::Sha256 {
            remote.store.keep_sha256();
        }
        let remote = Arc::new(remote);
        tokio::spawn(reader(Arc::downgrade(&remote), rx));
        tokio::spawn(uploader(Arc::downgrade(&remote), up_rx));
        Ok(remote)
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.spec.url
    }

    /// The instance name.
    pub fn instance(&self) -> &str {
        &self.spec.instance
    }

    /// The digest function in use.
    pub fn digest_fn(&self) -> DigestFn {
        self.digest_fn
    }

    /// The digest function, as REAPI numbers it.
    pub fn digest_fn_proto(&self) -> i32 {
        self.digest_fn.proto()
    }

    /// Whether the server offers the Execution service.
    pub fn exec_enabled(&self) -> bool {
        self.exec_enabled
    }

    /// The channel, for the execution and bots clients.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The local store this client fills.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// RPCs made so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// An error about this server.
    pub fn error(&self, what: impl Into<String>, message: impl Into<String>) -> RemoteError {
        RemoteError {
            server: self.spec.url.clone(),
            what: what.into(),
            code: None,
            message: message.into(),
        }
    }

    /// A request with this client's headers and a deadline.
    pub fn request<T>(&self, msg: T, deadline: Duration) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(deadline);
        for (k, v) in &self.headers {
            r.metadata_mut().insert(k.clone(), v.clone());
        }
        r
    }

    /// Makes one call, retrying `UNAVAILABLE` and `RESOURCE_EXHAUSTED` with
    /// exponential backoff: `f` makes the call (building its request with
    /// [`Remote::request`]) and is called again for a retry.
    pub async fn call<T, F, Fut>(&self, method: &'static str, f: F) -> Result<T, RemoteError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut backoff = Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            self.stats.count(method);
            // Bounded: a server answers calls from a pool of threads
            // (BuildGrid: 64), and 10,000 lookups at once only make it
            // refuse some with RESOURCE_EXHAUSTED.
            let permit = self.in_flight.acquire().await.expect("never closed");
            let r = f().await;
            drop(permit);
            match r {
                Ok(r) => return Ok(r.into_inner()),
                Err(s) if retryable(&s) && attempt < ATTEMPTS => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(s) => return Err(self.status(method, &s)),
            }
        }
    }

    /// A [`RemoteError`] from a gRPC status.
    pub fn status(&self, what: &str, s: &Status) -> RemoteError {
        let mut message = format!("{:?}: {}", s.code(), s.message());
        if let Some(source) = std::error::Error::source(s) {
            message = format!("{:?}: {}", s.code(), error_chain(source));
        }
        RemoteError {
            server: self.spec.url.clone(),
            what: what.to_string(),
            code: Some(s.code()),
            message,
        }
    }

    /// The remote name of bytes in hand.
    pub fn digest_of(&self, bytes: &[u8]) -> re::Digest {
        let hash = match self.digest_fn {
            DigestFn::Blake3 => Digest::of(bytes).to_hex(),
            DigestFn::Sha256 => Sha256::of(bytes).to_hex(),
        };
        re::Digest {
            hash,
            size_bytes: bytes.len() as i64,
        }
    }

    /// The remote name of a stored blob (its SHA-256 from the store's map).
    pub fn digest_of_blob(&self, d: &Digest) -> Result<re::Digest, RemoteError> {
        let names = self
            .store
            .names(d)
            .map_err(|e| self.error(format!("naming blob {d}"), e.to_string()))?;
        Ok(self.name(&names))
    }

    /// The remote digest for a blob's names.
    pub fn name(&self, n: &Names) -> re::Digest {
        re::Digest {
            hash: match self.digest_fn {
                DigestFn::Blake3 => n.blake3.to_hex(),
                DigestFn::Sha256 => n.sha256.to_hex(),
            },
            size_bytes: n.size as i64,
        }
    }

    /// Learns blobs' remote names from a result file, so that they can be
    /// fetched later (SHA-256 ones are kept in the store's map for later
    /// processes). A name that turns out wrong is caught when its bytes
    /// arrive.
    pub fn learn(
        &self,
        names: &std::collections::BTreeMap<Digest, (String, u64)>,
    ) -> Result<(), RemoteError> {
        let mut known = self.known.lock().unwrap();
        for (b3, (hash, size)) in names {
            known.insert(
                *b3,
                re::Digest {
                    hash: hash.clone(),
                    size_bytes: *size as i64,
                },
            );
        }
        drop(known);
        if self.digest_fn == DigestFn::Blake3 {
            return Ok(());
        }
        let mut all = Vec::with_capacity(names.len());
        for (b3, (hash, size)) in names {
            let sha256: Sha256 = hash
                .parse()
                .map_err(|e: String| self.error("reading a result file", e))?;
            all.push(Names {
                blake3: *b3,
                sha256,
                size: *size,
            });
        }
        self.store
            .sha256_index()
            .insert_all(&all)
            .map_err(|e| self.error("remembering remote names", e.to_string()))
    }

    /// The action cache's entry for an action, if there is one.
    pub async fn get_action_result(
        &self,
        action: &re::Digest,
        inline: &[&str],
    ) -> Result<Option<re::ActionResult>, RemoteError> {
        let r = self
            .call("GetActionResult", || async {
                ActionCacheClient::new(self.channel.clone())
                    .get_action_result(self.request(
                        re::GetActionResultRequest {
                            instance_name: self.spec.instance.clone(),
                            action_digest: Some(action.clone()),
                            inline_output_files: inline.iter().map(|s| s.to_string()).collect(),
                            digest_function: self.digest_fn.proto(),
                            ..Default::default()
                        },
                        CALL_DEADLINE,
                    ))
                    .await
            })
            .await;
        match r {
            Ok(ar) => Ok(Some(ar)),
            Err(e) if e.code == Some(Code::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores an action's result.
    pub async fn update_action_result(
        &self,
        action: &re::Digest,
        result: &re::ActionResult,
    ) -> Result<(), RemoteError> {
        self.call("UpdateActionResult", || async {
            ActionCacheClient::new(self.channel.clone())
                .update_action_result(self.request(
                    re::UpdateActionResultRequest {
                        instance_name: self.spec.instance.clone(),
                        action_digest: Some(action.clone()),
                        action_result: Some(result.clone()),
                        digest_function: self.digest_fn.proto(),
                        ..Default::default()
                    },
                    CALL_DEADLINE,
                ))
                .await
        })
        .await
        .map(drop)
    }

    /// Which of these blobs the server lacks.
    pub async fn find_missing(
        &self,
        digests: &[re::Digest],
    ) -> Result<Vec<re::Digest>, RemoteError> {
        let mut missing = Vec::new();
        for chunk in digests.chunks(FIND_MISSING_CHUNK) {
            let r = self
                .call("FindMissingBlobs", || async {
                    ContentAddressableStorageClient::new(self.channel.clone())
                        .find_missing_blobs(self.request(
                            re::FindMissingBlobsRequest {
                                instance_name: self.spec.instance.clone(),
                                blob_digests: chunk.to_vec(),
                                digest_function: self.digest_fn.proto(),
                            },
                            CALL_DEADLINE,
                        ))
                        .await
                })
                .await?;
            missing.extend(r.missing_blob_digests);
        }
        Ok(missing)
    }

    /// Uploads whichever of these blobs the server lacks. Uploads asked
    /// for at about the same time (many jobs ending or starting together)
    /// are gathered into one: one `FindMissingBlobs` for the whole set,
    /// then batches within the server's limit, and ByteStream above it.
    pub async fn upload(&self, blobs: Vec<(re::Digest, Source)>) -> Result<(), RemoteError> {
        if blobs.is_empty() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.uploads
            .send(UploadRequest { blobs, reply: tx })
            .map_err(|_| self.error("uploading", "the client is shutting down"))?;
        rx.await
            .map_err(|_| self.error("uploading", "the client is shutting down"))?
    }

    /// [`Remote::upload`] of one set, now.
    async fn upload_now(&self, blobs: Vec<(re::Digest, Source)>) -> Result<(), RemoteError> {
        let mut by_digest: HashMap<(String, i64), Source> = HashMap::new();
        for (d, s) in blobs {
            by_digest.entry((d.hash, d.size_bytes)).or_insert(s);
        }
        let digests: Vec<re::Digest> = by_digest
            .keys()
            .map(|(hash, size)| re::Digest {
                hash: hash.clone(),
                size_bytes: *size,
            })
            .collect();
        let missing = self.find_missing(&digests).await?;
        let mut batch = Vec::new();
        let mut batch_bytes = 0usize;
        let mut batches = Vec::new();
        let mut large = Vec::new();
        for d in missing {
            let source = &by_digest[&(d.hash.clone(), d.size_bytes)];
            let size = d.size_bytes as usize;
            if size > self.max_batch {
                large.push((d, source.clone()));
                continue;
            }
            // Each entry's digest and framing count towards the message too.
            let cost = size + ENTRY_OVERHEAD;
            if batch_bytes + cost > self.max_batch && !batch.is_empty() {
                batches.push(std::mem::take(&mut batch));
                batch_bytes = 0;
            }
            batch_bytes += cost;
            batch.push((d, source.clone()));
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        for b in batches {
            self.batch_update(b).await?;
        }
        for (d, s) in large {
            self.bytestream_write(&d, &s).await?;
        }
        Ok(())
    }

    fn bytes_of(&self, d: &re::Digest, source: &Source) -> Result<Vec<u8>, RemoteError> {
        let bytes = match source {
            Source::Bytes(b) => return Ok(b.to_vec()),
            Source::Stored(b3) => self.store.read(b3).map_err(|e| {
                self.error(format!("reading blob {b3} to upload it"), e.to_string())
            })?,
        };
        // The name came from the store's map: check it against the bytes
        // before the server is told it, so that a damaged map cannot put
        // wrong bytes under a name.
        if self.digest_of(&bytes) != *d {
            self.store.sha256_index().forget(&match source {
                Source::Stored(b3) => *b3,
                Source::Bytes(_) => unreachable!(),
            });
            return Err(self.error(
                "uploading",
                format!(
                    "the store's remote name {} for a blob does not match its bytes",
                    d.hash
                ),
            ));
        }
        Ok(bytes)
    }

    async fn batch_update(&self, blobs: Vec<(re::Digest, Source)>) -> Result<(), RemoteError> {
        let mut requests = Vec::with_capacity(blobs.len());
        for (d, s) in &blobs {
            requests.push(re::batch_update_blobs_request::Request {
                digest: Some(d.clone()),
                data: self.bytes_of(d, s)?,
                ..Default::default()
            });
        }
        let requests = &requests;
        let r = self
            .call("BatchUpdateBlobs", || async {
                ContentAddressableStorageClient::new(self.channel.clone())
                    .batch_update_blobs(self.request(
                        re::BatchUpdateBlobsRequest {
                            instance_name: self.spec.instance.clone(),
                            requests: requests.clone(),
                            digest_function: self.digest_fn.proto(),
                        },
                        CALL_DEADLINE,
                    ))
                    .await
            })
            .await?;
        for resp in r.responses {
            if let Some(s) = resp.status.filter(|s| s.code != 0) {
                return Err(self.error(
                    format!(
                        "uploading blob {}",
                        resp.digest.map(|d| d.hash).unwrap_or_default()
                    ),
                    format!("status {}: {}", s.code, s.message),
                ));
            }
        }
        Ok(())
    }

    fn resource(&self, d: &re::Digest) -> String {
        let mut r = String::new();
        if !self.spec.instance.is_empty() {
            r.push_str(&self.spec.instance);
            r.push('/');
        }
        r.push_str("blobs/");
        if self.digest_fn == DigestFn::Blake3 {
            r.push_str("blake3/");
        }
        r.push_str(&format!("{}/{}", d.hash, d.size_bytes));
        r
    }

    async fn bytestream_write(&self, d: &re::Digest, source: &Source) -> Result<(), RemoteError> {
        let bytes = Arc::new(self.bytes_of(d, source)?);
        let name = {
            let mut n = String::new();
            if !self.spec.instance.is_empty() {
                n.push_str(&self.spec.instance);
                n.push('/');
            }
            let uuid =
                blake3::hash(format!("{:?}{}", std::time::SystemTime::now(), d.hash).as_bytes());
            let u = uuid.to_hex();
            n.push_str(&format!(
                "uploads/{}-{}-{}-{}-{}/",
                &u[..8],
                &u[8..12],
                &u[12..16],
                &u[16..20],
                &u[20..32]
            ));
            n + &self.resource(d)
                [self.spec.instance.len() + usize::from(!self.spec.instance.is_empty())..]
        };
        let deadline = deadline_for(d.size_bytes);
        self.call("ByteStream.Write", || {
            let (bytes, name) = (bytes.clone(), name.clone());
            async move {
                let total = bytes.len();
                let chunks: Vec<bytestream::WriteRequest> = (0..total.div_ceil(CHUNK).max(1))
                    .map(|i| {
                        let start = i * CHUNK;
                        let end = (start + CHUNK).min(total);
                        bytestream::WriteRequest {
                            resource_name: if i == 0 { name.clone() } else { String::new() },
                            write_offset: start as i64,
                            finish_write: end == total,
                            data: bytes[start..end].to_vec(),
                        }
                    })
                    .collect();
                bytestream::byte_stream_client::ByteStreamClient::new(self.channel.clone())
                    .write(self.request(tokio_stream::iter(chunks), deadline))
                    .await
            }
        })
        .await
        .map(drop)
    }

    async fn bytestream_read(&self, d: &re::Digest) -> Result<Vec<u8>, RemoteError> {
        let resource = self.resource(d);
        let resource = &resource;
        self.call("ByteStream.Read", || async {
            let mut stream =
                bytestream::byte_stream_client::ByteStreamClient::new(self.channel.clone())
                    .read(self.request(
                        bytestream::ReadRequest {
                            resource_name: resource.clone(),
                            read_offset: 0,
                            read_limit: 0,
                        },
                        deadline_for(d.size_bytes),
                    ))
                    .await?
                    .into_inner();
            let mut out = Vec::with_capacity(d.size_bytes.max(0) as usize);
            while let Some(msg) = stream.message().await? {
                out.extend_from_slice(&msg.data);
            }
            Ok(tonic::Response::new(Blob(out)))
        })
        .await
        .map(|b| b.0)
    }

    /// Reads a blob's bytes, gathered with other reads into one batch.
    pub async fn read(&self, d: &re::Digest) -> Result<Vec<u8>, RemoteError> {
        if d.size_bytes as usize > self.max_batch {
            return self.bytestream_read(d).await;
        }
        let (tx, rx) = oneshot::channel();
        self.reads
            .send(ReadRequest {
                digest: d.clone(),
                reply: tx,
            })
            .map_err(|_| self.error("reading", "the client is shutting down"))?;
        rx.await
            .map_err(|_| self.error("reading", "the client is shutting down"))?
    }

    /// A blob's remote name, if this process or the store knows it: from
    /// a result file seen, the store's SHA-256 map, or the blob itself.
    pub fn remote_name(&self, d: &Digest) -> Option<re::Digest> {
        if let Some(r) = self.known.lock().unwrap().get(d) {
            return Some(r.clone());
        }
        match self.digest_fn {
            DigestFn::Sha256 => self.store.sha256_index().get(d).map(|n| self.name(&n)),
            DigestFn::Blake3 => {
                std::fs::metadata(self.store.blob_path(d))
                    .ok()
                    .map(|m| re::Digest {
                        hash: d.to_hex(),
                        size_bytes: m.len() as i64,
                    })
            }
        }
    }

    /// A blob's remote name: known already, or computed from the stored blob.
    pub fn name_of(&self, d: &Digest) -> Result<re::Digest, RemoteError> {
        match self.remote_name(d) {
            Some(r) => Ok(r),
            None => self.digest_of_blob(d),
        }
    }

    /// Reads a blob named in an action result (inline bytes when the server
    /// sent them), checked against its digest.
    pub async fn read_checked(
        &self,
        digest: &re::Digest,
        inline: &[u8],
    ) -> Result<Vec<u8>, RemoteError> {
        let bytes = if inline.is_empty() && digest.size_bytes > 0 {
            self.read(digest).await?
        } else {
            inline.to_vec()
        };
        if self.digest_of(&bytes) != *digest {
            return Err(self.error(
                format!("reading {}", digest.hash),
                "its bytes do not match its digest; refused",
            ));
        }
        Ok(bytes)
    }

    /// Fetches blobs the local store lacks, checking every byte against
    /// both its remote name and its local one: a blob served with wrong
    /// bytes is refused, and nothing local is overwritten.
    pub async fn fetch(&self, blobs: &[Digest]) -> Result<(), RemoteError> {
        let mut named = Vec::new();
        let mut seen = HashSet::new();
        for d in blobs {
            if !seen.insert(*d) || self.store.contains(d) {
                continue;
            }
            let remote = self.remote_name(d).ok_or_else(|| {
                self.error(
                    format!("fetching blob {d}"),
                    "its remote name is not known here (no result file from this server names it)",
                )
            })?;
            named.push((*d, remote));
        }
        self.fetch_named(&named).await
    }

    /// Fetches blobs whose remote names are given alongside.
    pub async fn fetch_named(&self, blobs: &[(Digest, re::Digest)]) -> Result<(), RemoteError> {
        let wanted: Vec<&(Digest, re::Digest)> = blobs
            .iter()
            .filter(|(d, _)| !self.store.contains(d))
            .collect();
        let results =
            futures_util::future::join_all(wanted.iter().map(|(_, r)| self.read(r))).await;
        let mut checked = Vec::with_capacity(wanted.len());
        for ((d, r), bytes) in wanted.into_iter().zip(results) {
            let bytes = bytes?;
            self.check(d, r, &bytes)?;
            checked.push(bytes);
        }
        let all: Vec<&[u8]> = checked.iter().map(Vec::as_slice).collect();
        self.store
            .put_all(&all)
            .map_err(|e| self.error("storing fetched blobs", e.to_string()))?;
        Ok(())
    }

    fn check(&self, d: &Digest, remote: &re::Digest, bytes: &[u8]) -> Result<(), RemoteError> {
        let mut h = BlobHasher::new(self.digest_fn == DigestFn::Sha256);
        h.update(bytes);
        let (b3, sha) = h.finish();
        let remote_ok = match (self.digest_fn, sha) {
            (DigestFn::Sha256, Some(s)) => s.to_hex() == remote.hash,
            _ => b3.to_hex() == remote.hash,
        };
        if !remote_ok || b3 != *d {
            if self.digest_fn == DigestFn::Sha256 {
                self.store.sha256_index().forget(d);
            }
            return Err(self.error(
                format!("fetching blob {d}"),
                format!(
                    "the server sent {} bytes that do not match the blob's digest{}; refused",
                    bytes.len(),
                    if remote_ok {
                        ""
                    } else {
                        " (nor the server's own name for it)"
                    }
                ),
            ));
        }
        Ok(())
    }
}

impl Namer for Remote {
    fn function(&self) -> &'static str {
        match self.digest_fn {
            DigestFn::Blake3 => "blake3",
            DigestFn::Sha256 => "sha256",
        }
    }

    fn of_bytes(&self, bytes: &[u8]) -> re::Digest {
        self.digest_of(bytes)
    }

    fn of_blob(&self, d: &Digest) -> Result<re::Digest, String> {
        self.digest_of_blob(d).map_err(|e| e.to_string())
    }
}

/// A blob read through ByteStream.
struct Blob(Vec<u8>);

fn retryable(s: &Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::ResourceExhausted)
}

/// A call moving `size` bytes gets a minute plus a second per 16 MiB.
fn deadline_for(size: i64) -> Duration {
    CALL_DEADLINE + Duration::from_secs((size.max(0) as u64) >> 24)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

/// Gathers uploads for a moment and sends them as one.
async fn uploader(remote: std::sync::Weak<Remote>, mut rx: mpsc::UnboundedReceiver<UploadRequest>) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(GATHER).await;
        let mut pending = vec![first];
        while let Ok(r) = rx.try_recv() {
            pending.push(r);
        }
        let Some(remote) = remote.upgrade() else {
            return;
        };
        // Sent from a task of its own: the next set gathers meanwhile.
        tokio::spawn(async move {
            let mut blobs = Vec::new();
            let mut replies = Vec::new();
            for p in pending {
                blobs.extend(p.blobs);
                replies.push(p.reply);
            }
            let r = remote.upload_now(blobs).await;
            for tx in replies {
                let _ = tx.send(r.clone());
            }
        });
    }
}

/// Gathers reads for a moment and sends them as batches.
async fn reader(remote: std::sync::Weak<Remote>, mut rx: mpsc::UnboundedReceiver<ReadRequest>) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(GATHER).await;
        let mut pending = vec![first];
        while let Ok(r) = rx.try_recv() {
            pending.push(r);
        }
        let Some(remote) = remote.upgrade() else {
            return;
        };
        let mut waiting: HashMap<(String, i64), Vec<oneshot::Sender<_>>> = HashMap::new();
        for r in pending {
            waiting
                .entry((r.digest.hash, r.digest.size_bytes))
                .or_default()
                .push(r.reply);
        }
        let mut batches: Vec<Vec<re::Digest>> = vec![Vec::new()];
        let mut bytes = 0usize;
        for (hash, size) in waiting.keys() {
            let cost = (*size).max(0) as usize + ENTRY_OVERHEAD;
            if bytes + cost > remote.max_batch && !batches.last().unwrap().is_empty() {
                batches.push(Vec::new());
                bytes = 0;
            }
            bytes += cost;
            batches.last_mut().unwrap().push(re::Digest {
                hash: hash.clone(),
                size_bytes: *size,
            });
        }
        let remote2 = remote.clone();
        tokio::spawn(async move {
            let calls = batches.into_iter().map(|digests| {
                let remote = remote2.clone();
                async move {
                    let digests = &digests;
                    let r = remote
                        .call("BatchReadBlobs", || async {
                            ContentAddressableStorageClient::new(remote.channel.clone())
                                .batch_read_blobs(remote.request(
                                    re::BatchReadBlobsRequest {
                                        instance_name: remote.spec.instance.clone(),
                                        digests: digests.clone(),
                                        digest_function: remote.digest_fn.proto(),
                                        ..Default::default()
                                    },
                                    CALL_DEADLINE,
                                ))
                                .await
                        })
                        .await;
                    (digests.clone(), r)
                }
            });
            for (digests, r) in futures_util::future::join_all(calls).await {
                match r {
                    Ok(resp) => {
                        let mut answered = HashSet::new();
                        for b in resp.responses {
                            let Some(d) = b.digest else { continue };
                            let key = (d.hash.clone(), d.size_bytes);
                            let result = match b.status.filter(|s| s.code != 0) {
                                None => Ok(b.data.to_vec()),
                                Some(s) => Err(RemoteError {
                                    server: remote2.spec.url.clone(),
                                    what: format!("reading blob {}", d.hash),
                                    code: Some(Code::from_i32(s.code)),
                                    message: format!("{:?}: {}", Code::from_i32(s.code), s.message),
                                }),
                            };
                            answered.insert(key.clone());
                            for tx in waiting.remove(&key).unwrap_or_default() {
                                let _ = tx.send(result.clone());
                            }
                        }
                        for d in digests {
                            let key = (d.hash.clone(), d.size_bytes);
                            if answered.contains(&key) {
                                continue;
                            }
                            for tx in waiting.remove(&key).unwrap_or_default() {
                                let _ = tx.send(Err(remote2.error(
                                    format!("reading blob {}", d.hash),
                                    "the server did not answer for it",
                                )));
                            }
                        }
                    }
                    Err(e) => {
                        for d in digests {
                            for tx in waiting.remove(&(d.hash, d.size_bytes)).unwrap_or_default() {
                                let _ = tx.send(Err(e.clone()));
                            }
                        }
                    }
                }
            }
        });
    }
}
