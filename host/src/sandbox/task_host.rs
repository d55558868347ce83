//! The host side of `cairn:task` (wit/task.wit): artifacts backed by the
//! content-addressed store, and the run context (logs, metrics, labels,
//! secrets). A job's artifacts are resources in its store's table; bytes
//! are verified as they leave the store and hashed as they are written.

use crate::store::action::Reported;
use crate::store::blobs::Store;
use crate::store::digest::{BlobHasher, Digest};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        interfaces: "
            import cairn:task/artifacts@0.1.0;
            import cairn:task/context@0.1.0;
        ",
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "cairn:task/artifacts.artifact": super::ArtifactRes,
            "cairn:task/artifacts.writer": super::WriterRes,
        },
        imports: { default: trappable },
        require_store_data_send: true,
    });
}

pub use generated::cairn::task::context::Level;

/// An artifact handle's host state: a blob in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactRes {
    /// The blob.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// A writer's host state: a scratch file being hashed as it grows.
#[derive(Debug, Clone)]
pub struct WriterRes(Arc<Mutex<WriterInner>>);

#[derive(Debug)]
struct WriterInner {
    /// Removed if the writer is dropped unfinished.
    file: tempfile::NamedTempFile,
    hasher: BlobHasher,
    size: u64,
    /// The job's bytes written through all its writers.
    written: Arc<AtomicU64>,
}

impl WriterInner {
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        self.written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// The per-job state behind `cairn:task`.
pub struct TaskCtx {
    store: Arc<Store>,
    written: Arc<AtomicU64>,
    log: Box<dyn OutputStream>,
    secrets: BTreeMap<String, String>,
    /// What the task reported.
    pub reported: Reported,
}

impl TaskCtx {
    /// The bytes written through the job's artifact writers so far, for
    /// the output limit.
    pub fn written(&self) -> Arc<AtomicU64> {
        self.written.clone()
    }

    /// Context for one job: artifacts in `store` (writers' files in its
    /// scratch space), log lines to `log`, and only the secrets the job
    /// declared.
    pub fn new(
        store: Arc<Store>,
        log: Box<dyn OutputStream>,
        secrets: BTreeMap<String, String>,
    ) -> Self {
        TaskCtx {
            store,
            written: Arc::default(),
            log,
            secrets,
            reported: Reported::default(),
        }
    }
}

/// A view of the job's state for the generated host traits.
pub struct TaskView<'a> {
    /// The task context.
    pub ctx: &'a mut TaskCtx,
    /// The job's resource table.
    pub table: &'a mut ResourceTable,
}

/// Marker for `add_to_linker`.
pub struct Task;

impl HasData for Task {
    type Data<'a> = TaskView<'a>;
}

/// Adds `cairn:task` to a linker whose state gives a [`TaskView`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    view: fn(&mut T) -> TaskView<'_>,
) -> wasmtime::Result<()> {
    generated::cairn::task::artifacts::add_to_linker::<T, Task>(linker, view)?;
    generated::cairn::task::context::add_to_linker::<T, Task>(linker, view)?;
    Ok(())
}

fn trap(msg: impl std::fmt::Display) -> wasmtime::Error {
    wasmtime::format_err!("{msg}")
}

impl generated::cairn::task::artifacts::Host for TaskView<'_> {}

impl generated::cairn::task::artifacts::HostArtifact for TaskView<'_> {
    fn digest(&mut self, a: Resource<ArtifactRes>) -> wasmtime::Result<String> {
        Ok(self.table.get(&a)?.digest.to_hex())
    }

    fn size(&mut self, a: Resource<ArtifactRes>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&a)?.size)
    }

    fn read(&mut self, a: Resource<ArtifactRes>) -> wasmtime::Result<Vec<u8>> {
        let digest = self.table.get(&a)?.digest;
        self.ctx.store.read(&digest).map_err(trap)
    }

    fn open(&mut self, a: Resource<ArtifactRes>) -> wasmtime::Result<Resource<DynInputStream>> {
        let art = *self.table.get(&a)?;
        let file = File::open(self.ctx.store.blob_path(&art.digest)).map_err(trap)?;
        let stream: DynInputStream = Box::new(BlobStream {
            file,
            expected: art.digest,
            hasher: blake3::Hasher::new(),
            done: false,
        });
        Ok(self.table.push(stream)?)
    }

    fn drop(&mut self, a: Resource<ArtifactRes>) -> wasmtime::Result<()> {
        self.table.delete(a)?;
        Ok(())
    }
}

impl generated::cairn::task::artifacts::HostWriter for TaskView<'_> {
    fn new(&mut self) -> wasmtime::Result<Resource<WriterRes>> {
        let inner = WriterInner {
            file: self.ctx.store.temp_file().map_err(trap)?,
            hasher: self.ctx.store.hasher(),
            size: 0,
            written: self.ctx.written.clone(),
        };
        Ok(self.table.push(WriterRes(Arc::new(Mutex::new(inner))))?)
    }

    fn write(&mut self, w: Resource<WriterRes>, bytes: Vec<u8>) -> wasmtime::Result<()> {
        let w = self.table.get(&w)?.0.clone();
        w.lock().unwrap().append(&bytes).map_err(trap)
    }

    fn stream(&mut self, w: Resource<WriterRes>) -> wasmtime::Result<Resource<DynOutputStream>> {
        let inner = self.table.get(&w)?.0.clone();
        let stream: DynOutputStream = Box::new(WriterStream(inner));
        Ok(self.table.push(stream)?)
    }

    fn finish(&mut self, w: Resource<WriterRes>) -> wasmtime::Result<Resource<ArtifactRes>> {
        let WriterRes(inner) = self.table.delete(w)?;
        let Ok(inner) = Arc::try_unwrap(inner) else {
            return Err(trap(
                "writer.finish called while a stream of it is still open; drop the stream first",
            ));
        };
        let inner = inner.into_inner().unwrap();
        let hashed = inner.hasher.finish();
        let digest = hashed.0;
        self.ctx
            .store
            .adopt(inner.file, hashed, inner.size)
            .map_err(trap)?;
        Ok(self.table.push(ArtifactRes {
            digest,
            size: inner.size,
        })?)
    }

    fn drop(&mut self, w: Resource<WriterRes>) -> wasmtime::Result<()> {
        // An unfinished writer's file is removed when its last handle goes.
        self.table.delete(w)?;
        Ok(())
    }
}

impl generated::cairn::task::context::Host for TaskView<'_> {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let tag = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        // Over the log limit the stream drops bytes; it never fails the task.
        let _ = self
            .ctx
            .log
            .write(Bytes::from(format!("[{tag}] {message}\n")));
        Ok(())
    }

    fn metric(&mut self, name: String, value: f64, step: Option<u64>) -> wasmtime::Result<()> {
        self.ctx.reported.metrics.push((name, step, value));
        Ok(())
    }

    fn label(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        self.ctx.reported.labels.insert(key, value);
        Ok(())
    }

    fn secret(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.ctx.secrets.get(&name).cloned())
    }
}

/// Reads a blob for a guest, checking the digest when the end is reached:
/// bytes leaving the store are verified even when streamed.
struct BlobStream {
    file: File,
    expected: Digest,
    hasher: blake3::Hasher,
    done: bool,
}

#[wasmtime_wasi::async_trait]
impl Pollable for BlobStream {
    async fn ready(&mut self) {}
}

impl InputStream for BlobStream {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.done {
            return Err(StreamError::Closed);
        }
        let mut buf = vec![0; size.min(1 << 20)];
        let n = self
            .file
            .read(&mut buf)
            .map_err(|e| StreamError::LastOperationFailed(wasmtime::format_err!(e)))?;
        if n == 0 && size > 0 {
            self.done = true;
            if Digest::from(self.hasher.finalize()) != self.expected {
                return Err(StreamError::Trap(trap(format!(
                    "blob {} is corrupt: its bytes no longer match its digest",
                    self.expected
                ))));
            }
            return Err(StreamError::Closed);
        }
        buf.truncate(n);
        self.hasher.update(&buf);
        Ok(Bytes::from(buf))
    }
}

/// Appends a guest's stream writes to a writer.
struct WriterStream(Arc<Mutex<WriterInner>>);

#[wasmtime_wasi::async_trait]
impl Pollable for WriterStream {
    async fn ready(&mut self) {}
}

impl OutputStream for WriterStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0
            .lock()
            .unwrap()
            .append(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(wasmtime::format_err!(e)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1 << 20)
    }
}
