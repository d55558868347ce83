//! Typed digests: a blob's blake3 digest, an action key and a blob's SHA-256
//! (its name on a remote server that offers only SHA-256) are all 32 bytes,
//! but one can never be passed where another is meant.

use std::fmt;
use std::str::FromStr;

macro_rules! digest_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Lowercase hex, 64 characters.
            #[allow(clippy::wrong_self_convention)]
            pub fn to_hex(&self) -> String {
                blake3::Hash::from_bytes(self.0).to_hex().to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), &self.to_hex()[..12])
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                blake3::Hash::from_hex(s)
                    .map(|h| $name(*h.as_bytes()))
                    .map_err(|_| format!("`{s}` is not a 64-character hex digest"))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

digest_type!(
    /// The blake3 digest of a blob's bytes.
    Digest
);
digest_type!(
    /// The key of an action-cache entry: blake3 over a canonical encoding of
    /// everything that determines a job's result.
    ActionKey
);

digest_type!(
    /// The key of a run summary: blake3 over what a workflow's run starts
    /// from (the file, parameters, inputs and components). Only a hint: a
    /// summary found under it is checked job by job against the keys the
    /// run computes.
    RunKey
);
digest_type!(
    /// The SHA-256 of a blob's bytes: its name on a remote server that
    /// offers no BLAKE3. Local names stay blake3; the store keeps the
    /// mapping (see `store::sha256`).
    Sha256
);

impl Sha256 {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Sha256(sha2::Sha256::digest(bytes).into())
    }
}

/// Hashes bytes as they stream past: always blake3, and SHA-256 too when
/// the store keeps remote names, so that a blob is read once for both.
#[derive(Debug, Clone)]
pub struct BlobHasher {
    blake3: blake3::Hasher,
    sha256: Option<sha2::Sha256>,
}

impl BlobHasher {
    /// A hasher; `sha256` says whether to compute the SHA-256 as well.
    pub fn new(sha256: bool) -> Self {
        BlobHasher {
            blake3: blake3::Hasher::new(),
            sha256: sha256.then(<sha2::Sha256 as sha2::Digest>::new),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.blake3.update(bytes);
        if let Some(s) = &mut self.sha256 {
            sha2::Digest::update(s, bytes);
        }
    }

    /// Feeds a whole file: memory-mapped when large and only blake3 is
    /// wanted, read in chunks otherwise. Returns its size.
    pub fn update_file(&mut self, path: &std::path::Path) -> std::io::Result<u64> {
        let size = std::fs::metadata(path)?.len();
        if size > 1 << 20 && self.sha256.is_none() {
            self.blake3.update_mmap(path)?;
            return Ok(size);
        }
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0u8; (size as usize).clamp(1, 1 << 20)];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf)?;
            if n == 0 {
                break;
            }
            self.update(&buf[..n]);
        }
        Ok(size)
    }

    /// The digests.
    pub fn finish(self) -> (Digest, Option<Sha256>) {
        (
            Digest::from(self.blake3.finalize()),
            self.sha256
                .map(|s| Sha256(sha2::Digest::finalize(s).into())),
        )
    }
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(*blake3::hash(bytes).as_bytes())
    }
}

impl From<blake3::Hash> for Digest {
    fn from(h: blake3::Hash) -> Self {
        Digest(*h.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_hex_and_json() {
        let d = Digest::of(b"hello");
        assert_eq!(d.to_hex().len(), 64);
        assert_eq!(d.to_hex().parse::<Digest>().unwrap(), d);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!("xyz".parse::<Digest>().is_err());
    }

    #[test]
    fn one_pass_gives_both_digests() {
        let mut h = BlobHasher::new(true);
        h.update(b"hel");
        h.update(b"lo");
        let (b3, sha) = h.finish();
        assert_eq!(b3, Digest::of(b"hello"));
        assert_eq!(
            sha.unwrap().to_hex(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(BlobHasher::new(false).finish().1, None);
    }
}
