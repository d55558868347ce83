//! The content-addressed store: blobs named by their blake3 digest, plus the
//! directories the rest of cairn keeps beside them (action cache, compiled
//! components, scratch space). The store is the only writer of blobs.
//!
//! ```text
//! <root>/VERSION              store format version
//! <root>/blobs/ab/cdef…       read-only blobs (2 + 62 hex digits)
//! <root>/ac/ab/cdef…          action-cache manifests (see `cache`)
//! <root>/compiled/<engine>/   precompiled components
//! <root>/files.json           digests of host files by path, size, mtime, inode
//! <root>/tmp/                 scratch on the same filesystem, for atomic renames
//! ```

use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
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
            root,
            files: Mutex::new(files),
            seen: Mutex::default(),
        })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
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

    /// True if the blob is present.
    pub fn contains(&self, d: &Digest) -> bool {
        // Always asked of the disk: another process may have collected it.
        self.blob_path(d).is_file()
    }

    /// Forgets which blobs this process has seen: for maintenance, which
    /// removes blobs behind the store's back.
    pub fn forget_seen(&self) {
        *self.seen.lock().unwrap() = Seen::default();
    }

    /// A fresh scratch directory on the store's filesystem, removed on drop.
    pub fn scratch(&self, prefix: &str) -> io::Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.root.join("tmp"))
    }

    /// A new file in the store's scratch space (same filesystem as the
    /// blobs, so [`Store::adopt`] is a rename), removed on drop unless kept.
    pub fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::NamedTempFile::new_in(self.root.join("tmp"))
    }

    /// Puts bytes in the store.
    pub fn put_bytes(&self, bytes: &[u8]) -> io::Result<Stored> {
        let stored = Stored {
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        };
        // Blobs this process put already (every job's empty log) are not
        // looked up again.
        let seen = self.seen.lock().unwrap().blobs.contains_key(&stored.digest);
        if !seen && !self.contains(&stored.digest) {
            let mut tmp = self.temp_file()?;
            tmp.write_all(bytes)?;
            self.commit_temp(tmp, &stored.digest)?;
        }
        self.seen.lock().unwrap().add(stored.digest, bytes);
        Ok(stored)
    }

    /// Moves a file that cairn owns (a job's output in scratch space) into
    /// the store, hashing it on the way. The file is gone afterwards.
    pub fn put_owned_file(&self, path: &Path) -> io::Result<Stored> {
        let mut hasher = blake3::Hasher::new();
        let size = hash_file(path, &mut hasher)?;
        let digest = Digest::from(hasher.finalize());
        if self.contains(&digest) {
            fs::remove_file(path)?;
        } else {
            File::open(path)?.sync_all()?;
            self.commit(path, &digest)?;
        }
        Ok(Stored { digest, size })
    }

    /// Moves a scratch file whose digest was computed while it was written
    /// into the store, fsyncing it first. A blob the store already holds
    /// (a rerun's output) is not synced at all: the file is just removed,
    /// often before the kernel has written any of it out.
    pub fn adopt(&self, file: tempfile::NamedTempFile, digest: &Digest) -> io::Result<()> {
        if self.contains(digest) {
            return file.close();
        }
        self.commit_temp(file, digest)
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
            return Ok(stored);
        }
        let mut src = File::open(path)?;
        let mut tmp = self.temp_file()?;
        let mut hasher = blake3::Hasher::new();
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
        let stored = Stored {
            digest: hasher.finalize().into(),
            size,
        };
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
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob {d} is corrupt: its bytes no longer match its digest"),
            ));
        }
        self.seen.lock().unwrap().add(*d, &bytes);
        Ok(bytes)
    }

    /// Makes a blob appear at `dest`: a hard link where the filesystem
    /// allows (no copy, no re-hash), else a copy.
    pub fn materialize(&self, d: &Digest, dest: &Path) -> io::Result<()> {
        let src = self.blob_path(d);
        match fs::hard_link(&src, dest) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
            Err(_) => fs::copy(&src, dest).map(drop),
        }
    }

    /// Makes a scratch file the blob `d`, as [`Store::commit`] does a
    /// path, but fsyncing and making it read-only through its open handle.
    fn commit_temp(&self, tmp: tempfile::NamedTempFile, d: &Digest) -> io::Result<()> {
        tmp.as_file().sync_all()?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o444))?;
        persist(tmp, &self.blob_path(d))
    }

    /// Makes `path`, which the caller has fsynced, read-only and renames it
    /// to the blob's place: a blob is durable before it has its name.
    fn commit(&self, path: &Path, d: &Digest) -> io::Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(0o444))?;
        rename_into(path, &self.blob_path(d))
    }
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

fn hash_file(path: &Path, hasher: &mut blake3::Hasher) -> io::Result<u64> {
    let size = fs::metadata(path)?.len();
    // Memory-mapping wins for large files; small ones are cheaper to read.
    if size > 1 << 20 {
        hasher.update_mmap(path)?;
    } else {
        hasher.update_reader(File::open(path)?)?;
    }
    Ok(size)
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
    fn refuses_a_store_of_another_version() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("VERSION"), "cairn-store 99\n").unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("cairn-store 99"), "{err}");
    }
}
