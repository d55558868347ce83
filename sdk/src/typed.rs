//! Helpers for typed tasks: artifacts as `std::io` readers and writers, and
//! the run context (logs, metrics, labels, secrets). See the crate docs.

use std::fmt;
use std::io::{self, Read, Write};

use crate::bindings::cairn::task::{artifacts, context};
use crate::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};

/// The generated handle of a `cairn:task` artifact
/// (`cairn_sdk::bindings::cairn::task::artifacts::Artifact`).
///
/// This is the type a task's generated bindings use for `artifact` when they
/// map `cairn:task/artifacts` to this crate (see the crate docs): an exported
/// function receives a `borrow<artifact>` as `&ArtifactHandle` and returns an
/// `artifact` as an `ArtifactHandle`. Wrap it in an [`Artifact`] to read it.
pub use crate::bindings::cairn::task::artifacts::Artifact as ArtifactHandle;

/// How important a log message is: the level of [`log`] and of the logging
/// macros ([`info!`](crate::info) and the others).
pub use crate::bindings::cairn::task::context::Level;

/// The most bytes asked of the host by one read of an artifact's stream, so
/// that reading holds a bounded amount of memory whatever the buffer size.
const READ_CHUNK: usize = 64 * 1024;

/// The most bytes one write to an artifact's stream passes to the host:
/// large, because every call crosses into the host (`blocking-write-and-
/// flush`'s 4096-byte limit made a 1 GiB artifact 262,144 calls), and
/// bounded, because the bytes are copied out of guest memory at once.
const WRITE_CHUNK: usize = 1 << 20;

/// An artifact a task reads: an owned or borrowed [`ArtifactHandle`].
///
/// An exported function receives its `borrow<artifact>` parameters as
/// `&ArtifactHandle`; [`Artifact::borrowed`] wraps one, and
/// [`Artifact::owned`] (or `From`) wraps an owned handle, such as one made by
/// [`Writer::finish`].
///
/// Small artifacts can be read whole with [`read_bytes`](Artifact::read_bytes)
/// or [`read_string`](Artifact::read_string). Large ones should be streamed:
/// `Artifact` implements [`Read`] over the artifact's input stream (opened on
/// the first read), asking the host for at most 64 KiB at a time, so reading
/// holds bounded memory:
///
/// ```no_run
/// use cairn_sdk::{Artifact, ArtifactHandle, Writer};
///
/// /// Copies an artifact of any size in bounded memory.
/// fn copy(input: &ArtifactHandle) -> std::io::Result<ArtifactHandle> {
///     let mut writer = Writer::new();
///     std::io::copy(&mut Artifact::borrowed(input), &mut writer)?;
///     Ok(writer.finish())
/// }
/// ```
///
/// The stream is dropped before an owned handle, as the component model
/// requires of a resource's children.
pub struct Artifact<'a> {
    // Declared first, so dropped first: the stream before its artifact.
    stream: Option<InputStream>,
    handle: Handle<'a>,
}

enum Handle<'a> {
    Owned(ArtifactHandle),
    Borrowed(&'a ArtifactHandle),
}

impl Artifact<'static> {
    /// Wraps an owned handle (dropped with the `Artifact`).
    pub fn owned(handle: ArtifactHandle) -> Self {
        Artifact {
            stream: None,
            handle: Handle::Owned(handle),
        }
    }
}

impl<'a> Artifact<'a> {
    /// Wraps a borrowed handle, such as a `borrow<artifact>` parameter.
    pub fn borrowed(handle: &'a ArtifactHandle) -> Self {
        Artifact {
            stream: None,
            handle: Handle::Borrowed(handle),
        }
    }

    /// The wrapped handle.
    pub fn handle(&self) -> &ArtifactHandle {
        match &self.handle {
            Handle::Owned(handle) => handle,
            Handle::Borrowed(handle) => handle,
        }
    }

    /// The owned handle, to return it from the task, or `None` if the
    /// handle is borrowed. Any stream opened for reading is dropped first.
    pub fn into_handle(self) -> Option<ArtifactHandle> {
        let Artifact { stream, handle } = self;
        drop(stream);
        match handle {
            Handle::Owned(handle) => Some(handle),
            Handle::Borrowed(_) => None,
        }
    }

    /// The blake3 digest of the contents: 64 lowercase hex digits.
    pub fn digest(&self) -> String {
        self.handle().digest()
    }

    /// The size of the contents in bytes.
    pub fn size(&self) -> u64 {
        self.handle().size()
    }

    /// The whole contents, in memory. Prefer [`Read`] for large artifacts.
    pub fn read_bytes(&self) -> Vec<u8> {
        self.handle().read()
    }

    /// The whole contents as UTF-8 text, in memory.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] if the contents are not valid UTF-8.
    pub fn read_string(&self) -> io::Result<String> {
        String::from_utf8(self.read_bytes()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("artifact {} is not UTF-8 text: {e}", self.digest()),
            )
        })
    }

    /// A new input stream over the contents, independent of the one
    /// [`Read`] uses. Drop it before dropping an owned handle.
    pub fn open(&self) -> InputStream {
        self.handle().open()
    }
}

impl From<ArtifactHandle> for Artifact<'static> {
    fn from(handle: ArtifactHandle) -> Self {
        Artifact::owned(handle)
    }
}

impl<'a> From<&'a ArtifactHandle> for Artifact<'a> {
    fn from(handle: &'a ArtifactHandle) -> Self {
        Artifact::borrowed(handle)
    }
}

impl fmt::Debug for Artifact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the handle number: anything else would call the host.
        let kind = match self.handle {
            Handle::Owned(_) => "owned",
            Handle::Borrowed(_) => "borrowed",
        };
        f.debug_struct("Artifact")
            .field("handle", &self.handle().handle())
            .field("kind", &kind)
            .field("streaming", &self.stream.is_some())
            .finish()
    }
}

impl Read for Artifact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(READ_CHUNK);
        let handle = match &self.handle {
            Handle::Owned(handle) => handle,
            Handle::Borrowed(handle) => *handle,
        };
        let stream = self.stream.get_or_insert_with(|| handle.open());
        loop {
            match stream.blocking_read(want as u64) {
                // `blocking-read` waits for at least one byte; an empty
                // result only means "try again".
                Ok(bytes) if bytes.is_empty() => continue,
                Ok(bytes) => return copy_chunk(&bytes, buf),
                Err(StreamError::Closed) => return Ok(0),
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(io::Error::other(format!(
                        "reading artifact: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
    }
}

/// Copies a chunk the host returned into the caller's buffer, refusing more
/// bytes than were asked for.
fn copy_chunk(chunk: &[u8], buf: &mut [u8]) -> io::Result<usize> {
    let Some(dest) = buf.get_mut(..chunk.len()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "reading artifact: the host returned {} bytes for a read of at most {}",
                chunk.len(),
                buf.len()
            ),
        ));
    };
    dest.copy_from_slice(chunk);
    Ok(chunk.len())
}

/// Builds a new artifact: bytes written go straight to the store.
///
/// `Writer` implements [`Write`] over the writer's output stream (opened on
/// the first write), passing as much per host call as the stream's
/// `check-write` permits (up to 1 MiB), so any amount of data can be
/// written in bounded memory. Wrap the writer in an [`io::BufWriter`] for
/// many small writes (and flush that before [`finish`](Writer::finish), or
/// call [`into_inner`](io::BufWriter::into_inner)).
///
/// [`Writer::finish`] seals the bytes into an artifact and returns its
/// owned handle, ready to be returned by the task:
///
/// ```no_run
/// use cairn_sdk::{ArtifactHandle, Writer};
/// use std::io::Write;
///
/// fn greeting(name: &str) -> std::io::Result<ArtifactHandle> {
///     let mut writer = Writer::new();
///     writeln!(writer, "hello {name}")?;
///     Ok(writer.finish())
/// }
/// ```
///
/// # Drop order
///
/// The host refuses to finish a writer while an output stream of it is
/// still open, so the stream must be dropped before `finish`. `Writer` does
/// this itself: `finish` drops its stream first. Code that opens a stream
/// of the underlying handle itself ([`Writer::handle`], then
/// [`stream`](artifacts::Writer::stream)) must drop that stream before
/// calling `finish` too. A writer dropped without `finish` discards
/// what was written.
pub struct Writer {
    // Declared first, so dropped first: the stream before its writer.
    stream: Option<OutputStream>,
    writer: artifacts::Writer,
    written: u64,
}

impl Writer {
    /// A new, empty writer.
    pub fn new() -> Self {
        Writer {
            stream: None,
            writer: artifacts::Writer::new(),
            written: 0,
        }
    }

    /// The number of bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The underlying `cairn:task` writer handle.
    pub fn handle(&self) -> &artifacts::Writer {
        &self.writer
    }

    /// Seals the bytes written so far into an artifact and returns its owned
    /// handle. The output stream, if one was opened, is dropped first (every
    /// write was already flushed).
    pub fn finish(self) -> ArtifactHandle {
        let Writer { stream, writer, .. } = self;
        drop(stream);
        artifacts::Writer::finish(writer)
    }
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("handle", &self.writer.handle())
            .field("written", &self.written)
            .field("streaming", &self.stream.is_some())
            .finish()
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let writer = &self.writer;
        let stream = self.stream.get_or_insert_with(|| writer.stream());
        // WASI's stream protocol: ask how much the host takes now, waiting
        // until it takes something, then write at most that much.
        let permit = loop {
            let permit = stream
                .check_write()
                .map_err(|e| stream_error(e, "writing artifact"))?;
            if permit > 0 {
                break usize::try_from(permit).unwrap_or(usize::MAX);
            }
            stream.subscribe().block();
        };
        let chunk = write_chunk(buf, permit);
        stream
            .write(chunk)
            .map_err(|e| stream_error(e, "writing artifact"))?;
        self.written += chunk.len() as u64;
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &self.stream {
            Some(stream) => stream
                .blocking_flush()
                .map_err(|e| stream_error(e, "flushing artifact")),
            None => Ok(()),
        }
    }
}

/// The part of `buf` one write passes, given the host's `permit`.
fn write_chunk(buf: &[u8], permit: usize) -> &[u8] {
    &buf[..buf.len().min(permit).min(WRITE_CHUNK)]
}

/// An `io::Error` for a failed stream operation.
fn stream_error(error: StreamError, what: &str) -> io::Error {
    match error {
        StreamError::Closed => io::Error::new(
            io::ErrorKind::BrokenPipe,
            format!("{what}: the stream is closed"),
        ),
        StreamError::LastOperationFailed(e) => {
            io::Error::other(format!("{what}: {}", e.to_debug_string()))
        }
    }
}

/// Records a log message for this job at `level`. The macros [`trace!`],
/// [`debug!`], [`info!`], [`warn!`] and [`error!`] call this with a
/// formatted message.
///
/// [`trace!`]: crate::trace
/// [`debug!`]: crate::debug
/// [`info!`]: crate::info
/// [`warn!`]: crate::warn
/// [`error!`]: crate::error
pub fn log(level: Level, message: &str) {
    context::log(level, message);
}

/// Records a value of metric `name`. `step` orders the values of one metric
/// (an epoch, an iteration); `None` when there is no such order.
///
/// ```no_run
/// for (epoch, loss) in [0.5, 0.25].into_iter().enumerate() {
///     cairn_sdk::metric("loss", loss, Some(epoch as u64 + 1));
/// }
/// ```
pub fn metric(name: &str, value: f64, step: Option<u64>) {
    context::metric(name, value, step);
}

/// Attaches the label `key` = `value` to this job's record (a later value
/// for the same key replaces an earlier one).
pub fn label(key: &str, value: &str) {
    context::label(key, value);
}

/// The value of secret `name`, if the job declared it (`secrets: [NAME]`)
/// and it is set; `None` otherwise.
///
/// Cairn keeps secret values out of logs, records and cache keys; the task
/// must not print them either.
pub fn secret(name: &str) -> Option<String> {
    context::secret(name)
}

/// Logs a message at [`Level::Trace`], formatted like [`format!`]:
/// `trace!("step {i}")`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::log($crate::Level::Trace, &::std::format!($($arg)+))
    };
}

/// Logs a message at [`Level::Debug`], formatted like [`format!`]:
/// `debug!("read {n} bytes")`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log($crate::Level::Debug, &::std::format!($($arg)+))
    };
}

/// Logs a message at [`Level::Info`], formatted like [`format!`]:
/// `info!("hello {name}")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log($crate::Level::Info, &::std::format!($($arg)+))
    };
}

/// Logs a message at [`Level::Warn`], formatted like [`format!`]:
/// `warn!("skipped {n} empty lines")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log($crate::Level::Warn, &::std::format!($($arg)+))
    };
}

/// Logs a message at [`Level::Error`], formatted like [`format!`]:
/// `error!("bad record {i}: {e}")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log($crate::Level::Error, &::std::format!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_cut_into_chunks_the_host_accepts() {
        assert!(write_chunk(&[], 4096).is_empty());
        assert_eq!(write_chunk(&[7; 10], 4096), &[7; 10]);
        assert_eq!(write_chunk(&[7; 10], 3), &[7; 3]);
        let big = vec![7; WRITE_CHUNK + 1];
        assert_eq!(write_chunk(&big, usize::MAX).len(), WRITE_CHUNK);
        assert_eq!(write_chunk(&big, 4096).len(), 4096);
    }

    #[test]
    fn read_chunks_fit_the_buffer() {
        let mut buf = [0; 8];
        assert_eq!(copy_chunk(b"abc", &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(copy_chunk(b"12345678", &mut buf).unwrap(), 8);
        assert_eq!(&buf, b"12345678");
        let err = copy_chunk(b"123456789", &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("9 bytes"), "{err}");
    }

    #[test]
    fn closed_streams_are_broken_pipes() {
        let err = stream_error(StreamError::Closed, "writing artifact");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(err.to_string(), "writing artifact: the stream is closed");
    }
}
