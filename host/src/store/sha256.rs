//! The store's map from blake3 names to SHA-256 names, for remote servers
//! that offer only SHA-256 (BuildGrid among them). Local names stay blake3;
//! a blob's SHA-256 is computed in the same read as its blake3 (see
//! [`BlobHasher`](super::digest::BlobHasher)) or learnt from a remote
//! manifest, and kept here, so that a cache hit never hashes again.
//!
//! On disk it is one append-only file of fixed 80-byte records (blake3,
//! SHA-256, size, and a check over the three), so any number of processes
//! can add to it at once with single `O_APPEND` writes, and a torn or
//! damaged record is skipped, never trusted.

use super::digest::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const RECORD: usize = 80;

/// A blob's names: blake3 locally, SHA-256 remotely, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    /// The local name.
    pub blake3: Digest,
    /// The remote name.
    pub sha256: Sha256,
    /// Its size in bytes.
    pub size: u64,
}

/// The map, loaded on first use.
#[derive(Debug)]
pub struct Sha256Index {
    path: PathBuf,
    state: Mutex<Option<State>>,
}

#[derive(Debug, Default)]
struct State {
    by_blake3: HashMap<Digest, Names>,
    by_sha256: HashMap<Sha256, Digest>,
    file: Option<File>,
}

impl Sha256Index {
    /// The index at `path` (created when first written).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Sha256Index {
            path: path.into(),
            state: Mutex::new(None),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self.state.lock().unwrap();
        let state = guard.get_or_insert_with(|| load(&self.path));
        f(state)
    }

    /// The names of a blob known by its blake3 digest.
    pub fn get(&self, d: &Digest) -> Option<Names> {
        self.with(|s| s.by_blake3.get(d).copied())
    }

    /// The blake3 name of a blob known by its SHA-256.
    pub fn by_sha256(&self, d: &Sha256) -> Option<Digest> {
        self.with(|s| s.by_sha256.get(d).copied())
    }

    /// Remembers a blob's names. A mapping that is already known is not
    /// written again; one that contradicts a known one is refused.
    pub fn insert(&self, names: Names) -> io::Result<()> {
        self.insert_all(std::slice::from_ref(&names))
    }

    /// Remembers many, in one write.
    pub fn insert_all(&self, all: &[Names]) -> io::Result<()> {
        let path = self.path.clone();
        self.with(|s| {
            let mut bytes = Vec::new();
            for n in all {
                match s.by_blake3.get(&n.blake3) {
                    Some(known) if known == n => continue,
                    Some(known) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "blob {} is already known as SHA-256 {} ({} bytes), not {} ({} bytes)",
                                n.blake3, known.sha256, known.size, n.sha256, n.size
                            ),
                        ));
                    }
                    None => {}
                }
                s.by_blake3.insert(n.blake3, *n);
                s.by_sha256.insert(n.sha256, n.blake3);
                bytes.extend_from_slice(&encode(n));
            }
            if bytes.is_empty() {
                return Ok(());
            }
            if s.file.is_none() {
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)?;
                }
                s.file = Some(OpenOptions::new().create(true).append(true).open(&path)?);
            }
            // Not fsynced: a lost record only costs hashing that blob again.
            s.file.as_mut().expect("opened above").write_all(&bytes)
        })
    }

    /// Forgets a mapping found to be wrong (its bytes hashed otherwise).
    /// The record stays in the file; a reload sees it again, and the bytes
    /// are checked again wherever they are used.
    pub fn forget(&self, d: &Digest) {
        self.with(|s| {
            if let Some(n) = s.by_blake3.remove(d) {
                s.by_sha256.remove(&n.sha256);
            }
        })
    }
}

fn check(body: &[u8]) -> [u8; 8] {
    let h = blake3::hash(body);
    h.as_bytes()[..8].try_into().expect("8 bytes")
}

fn encode(n: &Names) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..32].copy_from_slice(&n.blake3.0);
    r[32..64].copy_from_slice(&n.sha256.0);
    r[64..72].copy_from_slice(&n.size.to_le_bytes());
    let c = check(&r[..72]);
    r[72..].copy_from_slice(&c);
    r
}

fn decode(r: &[u8]) -> Option<Names> {
    (check(&r[..72]) == r[72..80]).then(|| Names {
        blake3: Digest(r[..32].try_into().expect("32 bytes")),
        sha256: Sha256(r[32..64].try_into().expect("32 bytes")),
        size: u64::from_le_bytes(r[64..72].try_into().expect("8 bytes")),
    })
}

fn load(path: &Path) -> State {
    let mut state = State::default();
    // A missing or unreadable file only means hashing again.
    let bytes = fs::read(path).unwrap_or_default();
    for r in bytes.chunks_exact(RECORD) {
        if let Some(n) = decode(r) {
            state.by_blake3.insert(n.blake3, n);
            state.by_sha256.insert(n.sha256, n.blake3);
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(b: &[u8]) -> Names {
        Names {
            blake3: Digest::of(b),
            sha256: Sha256::of(b),
            size: b.len() as u64,
        }
    }

    #[test]
    fn mappings_survive_a_reload_and_torn_records_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sha256");
        let index = Sha256Index::new(&path);
        let (a, b) = (names(b"a"), names(b"b"));
        index.insert_all(&[a, b]).unwrap();
        index.insert(a).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 2 * RECORD as u64);
        // A crash mid-append, and a flipped bit in the second record.
        let mut bytes = fs::read(&path).unwrap();
        bytes[RECORD + 40] ^= 1;
        bytes.extend_from_slice(&encode(&names(b"c"))[..30]);
        fs::write(&path, bytes).unwrap();
        let reloaded = Sha256Index::new(&path);
        assert_eq!(reloaded.get(&a.blake3), Some(a));
        assert_eq!(reloaded.by_sha256(&a.sha256), Some(a.blake3));
        assert_eq!(reloaded.get(&b.blake3), None);
    }

    #[test]
    fn a_contradicting_mapping_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let index = Sha256Index::new(dir.path().join("sha256"));
        let a = names(b"a");
        index.insert(a).unwrap();
        let wrong = Names {
            sha256: Sha256::of(b"not a"),
            ..a
        };
        assert!(index.insert(wrong).is_err());
        assert_eq!(index.get(&a.blake3), Some(a));
    }
}
