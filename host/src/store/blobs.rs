//! The content-addressed store: blobs named by their blake3 digest, plus the
//! directories the rest of cairn keeps beside them (action cache, compiled
//! components, scratch space). The store is the only writer of blobs.
//!
//! ```text
//! <root>/VERSION              store format version
//! <root>/blobs/ab/cdef…       read-only blobs (2 + 62 hex digits)
//! <root>/ac/ab/cdef…          action-cache manifests (see `cache`)
//! <root>/summaries/<run key>  run summaries: every job's key and manifest of a run (see `cache`)
//! <root>/compiled/<engine>/   precompiled components
//! <root>/files.json           digests of host files by path, size, mtime, inode
//! <root>/remote/sha256        blake3 → SHA-256 names, for remote servers (see `sha256`)
//! <root>/tmp/p-<id>/          one process's scratch, same filesystem, for atomic renames
//! ```
//!
//! A blob's modification time is its seal: set when it is written to a
//! value derived from its digest, so that a write to it later (a tampered
//! or damaged blob) shows in a `stat`. A blob whose seal is broken counts
//! as present only if its bytes still hash to its name (it is then sealed
//! again); otherwise as absent: a cache entry naming it misses, the job
//! runs again and writes it anew. Damage that changes no metadata is found
//! by reading (every read checks the digest) and by `cairn store verify`.
//!
//! A process's scratch directory holds a `lock` it keeps locked while it
//! lives; a process that can take another's lock knows its owner is gone
//! (killed mid-job, say) and removes what it left.

use crate::store::digest::{BlobHasher, Digest, Sha256};
use crate::store::sha256::{Names, Sha256Index};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The store's on-disk format; bumped on incompatible layout changes.
pub const STORE_VERSION: &str = "cairn-store 1";

/// A content-addressed store rooted at one directory.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    files: Mutex<FileIndex>,
    seen: Mutex<Seen>,
    sha256: Sha256Index,
    /// Whether new blobs get their SHA-256 too (a remote needs it).
    keep_sha256: AtomicBool,
    /// This process's scratch directory, made when first needed.
    scratch: Mutex<Option<Scratch>>,
}

/// A process's directory under `tmp/`, removed when the store is dropped,
/// or by another process once this one is gone (see [`sweep`]).
#[derive(Debug)]
struct Scratch {
    dir: PathBuf,
    /// `dir/lock`, locked for as long as the directory is in use.
    _lock: File,
}

/// Scratch directories are `p-…`; `.new-…` while they are being made.
const SCRATCH_PREFIX: &str = "p-";
const STAGING_PREFIX: &str = ".new-";

impl Scratch {
    /// Made under a staging name and renamed once its lock is held, so a
    /// sweeping process never sees a `p-…` directory without a held lock.
    fn create(tmp: &Path) -> io::Result<Scratch> {
        let staging = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(tmp)?;
        let lock = File::create(staging.path().join("lock"))?;
        lock.lock()?;
        let name = staging
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(STAGING_PREFIX))
            .map(|n| format!("{SCRATCH_PREFIX}{}-{n}", std::process::id()))
            .ok_or_else(|| io::Error::other("scratch directory name"))?;
        let dir = tmp.join(name);
        fs::rename(staging.path(), &dir)?;
        // Renamed away: nothing is left for the staging guard to remove.
        let _ = staging.keep();
        Ok(Scratch { dir, _lock: lock })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = remove_tree(&self.dir);
    }
}

/// Removes the directory tree at `path`, however deep or wide: a guest can
/// nest directories far deeper than a recursive removal survives (each
/// level an open file and a longer path). Each directory's subdirectories
/// are moved up beside it under fresh names before it is emptied, so the
/// tree only gets shallower, and two files and a short path suffice.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    use cap_std::ambient_authority;
    use cap_std::fs::Dir;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other(format!(
            "{} has no parent",
            path.display()
        )));
    };
    let top = Dir::open_ambient_dir(parent, ambient_authority())?;
    let mut todo = vec![PathBuf::from(name)];
    let mut moved = 0u64;
    while let Some(name) = todo.pop() {
        let dir = match top.open_dir(&name) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        // In batches: what is handled leaves the directory, so each
        // batch reads from its start.
        loop {
            let batch: Vec<_> = dir.entries()?.take(1024).collect::<io::Result<_>>()?;
            if batch.is_empty() {
                break;
            }
            for e in batch {
                if e.file_type()?.is_dir() {
                    moved += 1;
                    let fresh = PathBuf::from(format!(".rm-{}-{moved}", std::process::id()));
                    dir.rename(e.file_name(), &top, &fresh)?;
                    todo.push(fresh);
                } else {
                    match dir.remove_file(e.file_name()) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                }
            }
        }
        drop(dir);
        match top.remove_dir(&name) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Removes the scratch directories of processes that are gone: those
/// whose lock can be taken, and staging directories a process died while
/// making (older than a minute). What a killed job was writing goes too.
fn sweep(tmp: &Path, own: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if path == own {
            continue;
        }
        let gone = if name.starts_with(SCRATCH_PREFIX) {
            match File::open(path.join("lock")) {
                // The lock is released when its holder exits, however.
                Ok(f) => f.try_lock().is_ok(),
                // Its owner is removing it, or died before the lock existed.
                Err(_) => false,
            }
        } else if name.starts_with(STAGING_PREFIX) || name.starts_with(".rm-") {
            // (`.rm-…`: a subtree [`remove_tree`] had moved up when its
            // process died.)
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(60)))
        } else {
            false
        };
        if gone {
            let _ = remove_tree(&path);
        }
    }
}

/// Blobs this process has put or read, with the bytes of small ones: a
/// job's values are read by the next job from here, and blobs many jobs
/// share (the empty log) are not put again each time.
#[derive(Debug, Default)]
struct Seen {
    blobs: std::collections::HashMap<Digest, Option<Arc<[u8]>>>,
    bytes: usize,
}

/// Blobs up to this size are kept in memory once seen…
const SMALL_BLOB: usize = 4 << 10;
/// …until they add up to this much.
const SMALL_BLOBS_TOTAL: usize = 32 << 20;

impl Seen {
    fn add(&mut self, d: Digest, bytes: &[u8]) {
        if self.blobs.contains_key(&d) {
            return;
        }
        let keep = bytes.len() <= SMALL_BLOB && self.bytes + bytes.len() <= SMALL_BLOBS_TOTAL;
        if keep {
            self.bytes += bytes.len();
        }
        self.blobs.insert(d, keep.then(|| Arc::from(bytes)));
    }
}

/// A blob that was put in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

impl Store {
    /// Opens the store at `root`, creating it if needed. Refuses a directory
    /// written by an incompatible version rather than misreading it.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Store> {
        let root = root.into();
        for dir in ["blobs", "ac", "compiled", "tmp"] {
            fs::create_dir_all(root.join(dir))?;
        }
        let version = root.join("VERSION");
        match fs::read_to_string(&version) {
            Ok(v) if v.trim() == STORE_VERSION => {}
            Ok(v) => {
                return Err(io::Error::other(format!(
                    "{} holds a store of format `{}`, but this cairn reads `{STORE_VERSION}`; use another --store",
                    root.display(),
                    v.trim()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Atomically: another process may be opening the same new
                // store and must never read a half-written file.
                let mut tmp = tempfile::NamedTempFile::new_in(root.join("tmp"))?;
                tmp.write_all(format!("{STORE_VERSION}\n").as_bytes())?;
                tmp.persist(&version).map_err(|e| e.error)?;
            }
            Err(e) => return Err(e),
        }
        let files = FileIndex::load(&root.join("files.json"));
        Ok(Store {
            sha256: Sha256Index::new(root.join("remote").join("sha256")),
            root,
            files: Mutex::new(files),
            seen: Mutex::default(),
            keep_sha256: AtomicBool::new(false),
            scratch: Mutex::new(None),
        })
    }

    /// Opens an existing store for reading only: unlike [`Store::open`] it
    /// creates nothing, not even the store's directories, so a reader such
    /// as `cairn serve` leaves the store as it found it. Only `read`,
    /// `blob_path` and `contains` make sense on it.
    pub fn open_read_only(root: impl Into<PathBuf>) -> io::Result<Store> {
        let root = root.into();
        let version = root.join("VERSION");
        match fs::read_to_string(&version) {
            Ok(v) if v.trim() == STORE_VERSION => {}
            Ok(v) => {
                return Err(io::Error::other(format!(
                    "{} holds a store of format `{}`, but this cairn reads `{STORE_VERSION}`",
                    root.display(),
                    v.trim()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "{} is not a cairn store (it has no VERSION file)",
                        root.display()
                    ),
                ));
            }
            Err(e) => return Err(e),
        }
        Ok(Store {
            sha256: Sha256Index::new(root.join("remote").join("sha256")),
            root,
            files: Mutex::default(),
            seen: Mutex::default(),
            keep_sha256: AtomicBool::new(false),
            scratch: Mutex::new(None),
        })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// From now on, every blob put in the store gets its SHA-256 as well,
    /// computed in the same read as its blake3: a remote server that offers
    /// only SHA-256 names blobs by it.
    pub fn keep_sha256(&self) {
        self.keep_sha256.store(true, Ordering::Relaxed);
    }

    /// A hasher for bytes on their way into the store (see [`Store::adopt`]).
    pub fn hasher(&self) -> BlobHasher {
        BlobHasher::new(self.keep_sha256.load(Ordering::Relaxed))
    }

    /// The blake3 → SHA-256 map.
    pub fn sha256_index(&self) -> &Sha256Index {
        &self.sha256
    }

    /// A stored blob's SHA-256 name: from the index, or (once, for a blob
    /// stored before a remote was in use) by reading it.
    pub fn names(&self, d: &Digest) -> io::Result<Names> {
        if let Some(n) = self.sha256.get(d) {
            return Ok(n);
        }
        let mut h = BlobHasher::new(true);
        let size = h.update_file(&self.blob_path(d))?;
        let (b3, sha) = h.finish();
        if b3 != *d {
            return Err(corrupt(d));
        }
        let names = Names {
            blake3: b3,
            sha256: sha.expect("asked for"),
            size,
        };
        self.sha256.insert(names)?;
        Ok(names)
    }

    fn note_sha256(&self, blake3: Digest, sha256: Option<Sha256>, size: u64) -> io::Result<()> {
        match sha256 {
            Some(sha256) => self.sha256.insert(Names {
                blake3,
                sha256,
                size,
            }),
            None => Ok(()),
        }
    }

    /// Writes a small index or cache file under the store atomically (a
    /// temp file in the store, renamed into place), creating its
    /// directory, so a concurrent reader sees the old file or the new one,
    /// never half of one. Not fsynced: such files are rebuilt when lost.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut tmp = self.temp_file()?;
        tmp.write_all(bytes)?;
        persist(tmp, path)
    }

    /// Where a blob lives (whether or not it is there).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        let hex = d.to_hex();
        self.root.join("blobs").join(&hex[..2]).join(&hex[2..])
    }

    /// True if the blob is present and intact: sealed, or (written before
    /// blobs were sealed, or touched since) still hashing to its name.
    pub fn contains(&self, d: &Digest) -> bool {
        // Always asked of the disk: another process may have collected it.
        let path = self.blob_path(d);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() && m.modified().is_ok_and(|t| t == seal(d)) => true,
            Ok(m) if m.is_file() => reseal(&path, d),
            _ => false,
        }
    }

    /// Forgets which blobs this process has seen: for maintenance, which
    /// removes blobs behind the store's back.
    pub fn forget_seen(&self) {
        *self.seen.lock().unwrap() = Seen::default();
    }

    /// This process's scratch directory (see [`Scratch`]); the first call
    /// makes it and clears away what dead processes left.
    fn scratch_dir(&self) -> io::Result<PathBuf> {
        let mut scratch = self.scratch.lock().unwrap();
        if let Some(s) = &*scratch {
            return Ok(s.dir.clone());
        }
        let tmp = self.root.join("tmp");
        let made = Scratch::create(&tmp)?;
        sweep(&tmp, &made.dir);
        let dir = made.dir.clone();
        *scratch = Some(made);
        Ok(dir)
    }

    /// A fresh scratch directory on the store's filesystem, removed on drop.
    pub fn scratch(&self, prefix: &str) -> io::Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.scratch_dir()?)
    }

    /// A new file in the store's scratch space (same filesystem as the
    /// blobs, so [`Store::adopt`] is a rename), removed on drop unless kept.
    pub fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::NamedTempFile::new_in(self.scratch_dir()?)
    }

    /// Whether the store's filesystem is out of space, tried by writing a
    /// little: a job that fails while it is may have failed for it, which
    /// is the machine's fault, not the job's.
    pub fn is_full(&self) -> bool {
        let probe = || -> io::Result<()> {
            let mut f = self.temp_file()?;
            f.write_all(&[0; 64 << 10])?;
            f.as_file().sync_data()
        };
        match probe() {
            Ok(()) => false,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            ),
        }
    }

    /// Puts bytes in the store.
    pub fn put_bytes(&self, bytes: &[u8]) -> io::Result<Stored> {
        let mut pending = Vec::new();
        let stored = self.put_bytes_unsynced(bytes, &mut pending)?;
        for (tmp, d) in pending {
            self.commit_temp(tmp, &d)?;
        }
        // Seen only once it has its name: another task that sees it seen
        // takes it for present.
        self.seen.lock().unwrap().add(stored.digest, bytes);
        Ok(stored)
    }

    /// Puts many blobs at once, as a fetch from a remote does: each is
    /// written to scratch space, the filesystem is synced once (`syncfs`),
    /// and each is then renamed into place. Durable before named, as with
    /// [`Store::put_bytes`], for one flush instead of one per blob.
    pub fn put_all(&self, blobs: &[&[u8]]) -> io::Result<Vec<Stored>> {
        let mut stored = Vec::with_capacity(blobs.len());
        let mut pending = Vec::new();
        for bytes in blobs {
            let s = self.put_bytes_unsynced(bytes, &mut pending)?;
            stored.push(s);
        }
        if let Some((tmp, _)) = pending.first() {
            rustix::fs::syncfs(tmp.as_file())?;
        }
        for (tmp, d) in pending {
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(0o444))?;
            persist(tmp, &self.blob_path(&d))?;
        }
        let mut seen = self.seen.lock().unwrap();
        for (s, bytes) in stored.iter().zip(blobs) {
            seen.add(s.digest, bytes);
        }
        drop(seen);
        Ok(stored)
    }

    /// [`Store::put_bytes`] up to the rename: a new blob's scratch file is
    /// added to `pending` to be synced and named by the caller.
    fn put_bytes_unsynced(
        &self,
        bytes: &[u8],
        pending: &mut Vec<(tempfile::NamedTempFile, Digest)>,
    ) -> io::Result<Stored> {
        let stored = Stored {
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        };
        let seen = self.seen.lock().unwrap().blobs.contains_key(&stored.digest);
        if !seen
            && !self.contains(&stored.digest)
            && !pending.iter().any(|(_, d)| *d == stored.digest)
        {
            let mut tmp = self.temp_file()?;
            tmp.write_all(bytes)?;
            pending.push((tmp, stored.digest));
        }
        if self.keep_sha256.load(Ordering::Relaxed) && self.sha256.get(&stored.digest).is_none() {
            self.note_sha256(stored.digest, Some(Sha256::of(bytes)), stored.size)?;
        }
        Ok(stored)
    }

    /// Moves a file that cairn owns (a job's output in scratch space) into
    /// the store, hashing it on the way. The file is gone afterwards.
    pub fn put_owned_file(&self, path: &Path) -> io::Result<Stored> {
        let mut hasher = self.hasher();
        let size = hasher.update_file(path)?;
        let (digest, sha256) = hasher.finish();
        self.note_sha256(digest, sha256, size)?;
        if self.contains(&digest) {
            fs::remove_file(path)?;
        } else {
            self.commit(path, &digest)?;
        }
        Ok(Stored { digest, size })
    }

    /// Moves a scratch file whose digest was computed while it was written
    /// into the store, fsyncing it first. A blob the store already holds
    /// (a rerun's output) is not synced at all: the file is just removed,
    /// often before the kernel has written any of it out.
    /// `hashed` is what [`Store::hasher`]'s hasher gave for its `size` bytes.
    pub fn adopt(
        &self,
        file: tempfile::NamedTempFile,
        hashed: (Digest, Option<Sha256>),
        size: u64,
    ) -> io::Result<()> {
        let (digest, sha256) = hashed;
        self.note_sha256(digest, sha256, size)?;
        if self.contains(&digest) {
            return file.close();
        }
        self.commit_temp(file, &digest)
    }

    /// Copies a host file into the store, hashing while copying. Files seen
    /// before with the same path, size, mtime and inode are not read again.
    pub fn put_host_file(&self, path: &Path) -> io::Result<Stored> {
        let meta = fs::metadata(path)?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a file", path.display()),
            ));
        }
        let abs = fs::canonicalize(path)?;
        let stamp = Stamp::of(&meta);
        let known = self.files.lock().unwrap().get(&abs, &stamp);
        if let Some(stored) = known.filter(|s| self.contains(&s.digest)) {
            if self.keep_sha256.load(Ordering::Relaxed) {
                self.names(&stored.digest)?;
            }
            return Ok(stored);
        }
        let mut src = File::open(path)?;
        let mut tmp = self.temp_file()?;
        let mut hasher = self.hasher();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = src.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])?;
            size += n as u64;
        }
        let (digest, sha256) = hasher.finish();
        self.note_sha256(digest, sha256, size)?;
        let stored = Stored { digest, size };
        if !self.contains(&stored.digest) {
            self.commit_temp(tmp, &stored.digest)?;
        }
        self.files.lock().unwrap().insert(abs, stamp, stored);
        Ok(stored)
    }

    /// This store's key for hashing secret values into action keys: random,
    /// made on first use, readable only by its owner. Hashes keyed by it
    /// say nothing about a secret outside this store.
    pub fn secret_key(&self) -> io::Result<[u8; 32]> {
        let path = self.root.join("secret-key");
        if let Ok(bytes) = fs::read(&path)
            && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
        {
            return Ok(key);
        }
        let mut seed = [0u8; 32];
        File::open("/dev/urandom")?.read_exact(&mut seed)?;
        let mut tmp = self.temp_file()?;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o600))?;
        tmp.write_all(&seed)?;
        // Another process may have made one meanwhile: keep whichever landed first.
        match tmp.persist_noclobber(&path) {
            Ok(_) => Ok(seed),
            Err(_) => fs::read(&path)?
                .as_slice()
                .try_into()
                .map_err(|_| io::Error::other("secret-key is damaged")),
        }
    }

    /// Saves the host-file digest index if it changed. Losing it only costs
    /// a re-hash, so it is written atomically but not fsynced.
    pub fn save_index(&self) -> io::Result<()> {
        let mut files = self.files.lock().unwrap();
        if !files.dirty {
            return Ok(());
        }
        let json = serde_json::to_vec(&files.entries)?;
        let tmp = self.temp_file()?;
        fs::write(tmp.path(), json)?;
        tmp.persist(self.root.join("files.json"))
            .map_err(|e| e.error)?;
        files.dirty = false;
        Ok(())
    }

    /// Reads a whole blob, checking its digest as it leaves the store.
    pub fn read(&self, d: &Digest) -> io::Result<Vec<u8>> {
        if let Some(Some(bytes)) = self.seen.lock().unwrap().blobs.get(d) {
            return Ok(bytes.to_vec());
        }
        let bytes = fs::read(self.blob_path(d))?;
        if Digest::of(&bytes) != *d {
            return Err(corrupt(d));
        }
        self.seen.lock().unwrap().add(*d, &bytes);
        Ok(bytes)
    }

    /// Makes a blob appear at `dest`: a hard link where the filesystem
    /// allows (no copy, no re-hash), else a copy. A blob whose seal is
    /// broken and whose bytes no longer match is never handed out.
    pub fn materialize(&self, d: &Digest, dest: &Path) -> io::Result<()> {
        let src = self.blob_path(d);
        if !self.contains(d) {
            return Err(match src.exists() {
                true => corrupt(d),
                false => io::Error::new(io::ErrorKind::NotFound, format!("blob {d} is missing")),
            });
        }
        match fs::hard_link(&src, dest) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
            Err(_) => fs::copy(&src, dest).map(drop),
        }
    }

    /// Makes a scratch file the blob `d`, as [`Store::commit`] does a
    /// path, but fsyncing and making it read-only through its open handle.
    fn commit_temp(&self, tmp: tempfile::NamedTempFile, d: &Digest) -> io::Result<()> {
        tmp.as_file().set_modified(seal(d))?;
        tmp.as_file().sync_all()?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o444))?;
        persist(tmp, &self.blob_path(d))
    }

    /// Seals `path`, fsyncs it, makes it read-only and renames it to the
    /// blob's place: a blob is durable before it has its name.
    fn commit(&self, path: &Path, d: &Digest) -> io::Result<()> {
        let file = File::open(path)?;
        file.set_modified(seal(d))?;
        file.sync_all()?;
        file.set_permissions(fs::Permissions::from_mode(0o444))?;
        rename_into(path, &self.blob_path(d))
    }
}

/// The modification time a blob is written with (see the module doc):
/// derived from its digest, in whole even seconds (which every filesystem
/// keeps exactly), long past.
fn seal(d: &Digest) -> SystemTime {
    let n = u32::from_le_bytes([d.0[0], d.0[1], d.0[2], d.0[3]]) & 0x0fff_ffff;
    UNIX_EPOCH + Duration::from_secs(1_000_000_000 + 2 * u64::from(n))
}

/// A blob whose seal is broken is intact only if it still hashes to its
/// name; then it is sealed again, so the next look is a `stat` again.
fn reseal(path: &Path, d: &Digest) -> bool {
    let mut h = blake3::Hasher::new();
    let intact = File::open(path)
        .and_then(|f| h.update_reader(f).map(drop))
        .is_ok()
        && Digest::from(h.finalize()) == *d;
    if intact {
        // Setting the times of a file one owns needs no write permission.
        let _ = File::open(path).and_then(|f| f.set_modified(seal(d)));
    }
    intact
}

/// Renames a scratch file to `to` (see [`rename_into`]) and keeps it there:
/// dropping the temp path would unlink a name that no longer exists.
fn persist(tmp: tempfile::NamedTempFile, to: &Path) -> io::Result<()> {
    let path = tmp.into_temp_path();
    rename_into(&path, to)?;
    path.keep().map(drop).map_err(|e| e.error)
}

/// Renames `from` to `to`, creating `to`'s directory only when the rename
/// says it is missing: a store's 256 shard directories exist after its
/// first few writes, and asking for them on every write cost one or two
/// failing `mkdir`s per blob and per cache entry.
fn rename_into(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(to.parent().expect("store paths have a parent"))?;
            fs::rename(from, to)
        }
        r => r,
    }
}

fn corrupt(d: &Digest) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("blob {d} is corrupt: its bytes no longer match its digest"),
    )
}

/// What identifies a file's contents without reading them, as git's index does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            size: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexEntry {
    stamp: Stamp,
    digest: Digest,
}

#[derive(Debug, Default)]
struct FileIndex {
    entries: HashMap<PathBuf, IndexEntry>,
    dirty: bool,
}

impl FileIndex {
    fn load(path: &Path) -> FileIndex {
        // A missing or unreadable index only means hashing again.
        let entries = fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        FileIndex {
            entries,
            dirty: false,
        }
    }

    fn get(&self, path: &Path, stamp: &Stamp) -> Option<Stored> {
        self.entries
            .get(path)
            .filter(|e| e.stamp == *stamp)
            .map(|e| Stored {
                digest: e.digest,
                size: e.stamp.size,
            })
    }

    fn insert(&mut self, path: PathBuf, stamp: Stamp, stored: Stored) {
        // A file modified in the last moments may change again within the
        // mtime's granularity without its stamp changing ("racily clean" in
        // git's terms): do not remember it.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        if stamp.mtime_ns + 2_000_000_000 > now.as_nanos() as i128 {
            return;
        }
        self.entries.insert(
            path,
            IndexEntry {
                stamp,
                digest: stored.digest,
            },
        );
        self.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_bytes_are_stored_once_and_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.put_bytes(b"hello").unwrap();
        let b = store.put_bytes(b"hello").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.size, 5);
        let path = store.blob_path(&a.digest);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o444
        );
        assert_eq!(store.read(&a.digest).unwrap(), b"hello");
        let n = fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(n, 1);
        drop(store);
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0,
            "no temp files left"
        );
    }

    #[test]
    fn owned_files_move_in_and_host_files_are_copied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        let f = dir.path().join("out");
        fs::write(&f, b"bytes").unwrap();
        let s = store.put_owned_file(&f).unwrap();
        assert!(!f.exists());
        assert_eq!(s.digest, Digest::of(b"bytes"));
        let host = dir.path().join("host.txt");
        fs::write(&host, b"input").unwrap();
        let h = store.put_host_file(&host).unwrap();
        assert!(host.exists());
        assert_eq!(store.read(&h.digest).unwrap(), b"input");
        let linked = dir.path().join("linked");
        store.materialize(&h.digest, &linked).unwrap();
        assert_eq!(fs::read(&linked).unwrap(), b"input");
        assert_eq!(
            fs::metadata(&linked).unwrap().ino(),
            fs::metadata(store.blob_path(&h.digest)).unwrap().ino()
        );
    }

    #[test]
    fn corrupt_blobs_are_detected_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let s = store.put_bytes(b"good").unwrap();
        let p = store.blob_path(&s.digest);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"evil").unwrap();
        // A later process (this one remembers the bytes it wrote).
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.read(&s.digest).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn the_index_skips_rehashing_only_unchanged_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        let f = dir.path().join("in.txt");
        fs::write(&f, b"one").unwrap();
        // Age the file so the index trusts it.
        let old = SystemTime::now() - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let a = store.put_host_file(&f).unwrap();
        store.save_index().unwrap();
        let reopened = Store::open(dir.path().join("s")).unwrap();
        assert_eq!(reopened.put_host_file(&f).unwrap(), a);
        fs::write(&f, b"two").unwrap();
        assert_eq!(
            reopened.put_host_file(&f).unwrap().digest,
            Digest::of(b"two")
        );
    }

    #[test]
    fn a_tampered_blob_counts_as_absent_and_is_written_anew() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let s = store.put_bytes(b"good").unwrap();
        let p = store.blob_path(&s.digest);
        assert!(store.contains(&s.digest));
        // Only touched: still intact, and sealed again.
        File::open(&p)
            .unwrap()
            .set_modified(SystemTime::now())
            .unwrap();
        assert!(store.contains(&s.digest));
        assert_eq!(
            fs::metadata(&p).unwrap().modified().unwrap(),
            seal(&s.digest)
        );
        // Rewritten: absent, never linked into a job, and replaced by a put.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"evil").unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(!store.contains(&s.digest));
        let err = store
            .materialize(&s.digest, &dir.path().join("in"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        store.put_bytes(b"good").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"good");
        assert!(store.contains(&s.digest));
    }

    #[test]
    fn scratch_left_by_a_dead_process_is_swept_and_a_live_ones_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        let live = Store::open(dir.path()).unwrap();
        let kept = live.temp_file().unwrap();
        // A process that died: its lock is free, its half-written file stays.
        let dead = tmp.join("p-1-dead");
        fs::create_dir(&dead).unwrap();
        File::create(dead.join("lock")).unwrap();
        fs::write(dead.join("half"), vec![0u8; 4096]).unwrap();
        let other = Store::open(dir.path()).unwrap();
        other.put_bytes(b"x").unwrap();
        assert!(!dead.exists(), "the dead process's scratch is removed");
        assert!(kept.path().exists(), "the live one's is not");
        drop((kept, live, other));
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    }

    #[test]
    fn refuses_a_store_of_another_version() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("VERSION"), "cairn-store 99\n").unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("cairn-store 99"), "{err}");
    }
}
