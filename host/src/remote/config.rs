//! Saved runtime configurations: where a run goes, chosen at run time by
//! name (`cairn run --config NAME`, or `CAIRN_CONFIG`), as Orquestra's
//! configurations and MLRun's engines are. `local` is built in and is the
//! default. The rest live in the user's configuration directory
//! (`$XDG_CONFIG_HOME/cairn/configs.json`, else `~/.config/cairn/`),
//! readable only by the user. A configuration never enters a cache key or
//! a run record.

use crate::remote::client::RemoteSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

/// The built-in configuration: everything on this machine.
pub const LOCAL: &str = "local";

/// One saved configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The REAPI server, `grpc://host:port`.
    pub remote: String,
    /// The instance name.
    #[serde(default)]
    pub instance: String,
    /// Headers sent with every call, as given (`authorization`, `Bearer …`).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Headers whose values are read from the environment when used:
    /// (header, variable).
    #[serde(default)]
    pub headers_from_env: Vec<(String, String)>,
    /// Send jobs to the server's Execution service, not only its cache.
    #[serde(default)]
    pub exec: bool,
}

/// Where a run goes: the server, and whether it executes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The server.
    pub spec: RemoteSpec,
    /// Execute remotely (else: only the cache is remote).
    pub exec: bool,
}

/// Why a configuration could not be used or saved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No configuration has this name.
    #[error("no configuration `{0}` (see `cairn config list`)")]
    Unknown(String),
    /// A header's environment variable is not set.
    #[error("configuration `{config}`: header `{header}` is read from ${var}, which is not set")]
    MissingEnv {
        /// The configuration.
        config: String,
        /// The header.
        header: String,
        /// The variable.
        var: String,
    },
    /// The name is not allowed.
    #[error("`{0}` cannot be used as a configuration name: {1}")]
    BadName(String, &'static str),
    /// The configuration file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    configs: BTreeMap<String, Config>,
}

/// The configuration file's path.
pub fn path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".config")
        });
    base.join("cairn").join("configs.json")
}

fn load() -> Result<File, ConfigError> {
    let p = path();
    match fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ConfigError::Io {
            path: p,
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(File::default()),
        Err(source) => Err(ConfigError::Io { path: p, source }),
    }
}

fn save(file: &File) -> Result<(), ConfigError> {
    let p = path();
    let io = |source| ConfigError::Io {
        path: p.clone(),
        source,
    };
    let dir = p.parent().expect("the path has a parent");
    fs::create_dir_all(dir).map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    // Written whole and renamed: a reader sees the old file or the new one.
    let tmp = dir.join(format!(".configs.json.{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(&serde_json::to_vec_pretty(file).expect("serialisable"))
        .map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, &p).map_err(io)
}

/// Every saved configuration, by name.
pub fn list() -> Result<BTreeMap<String, Config>, ConfigError> {
    Ok(load()?.configs)
}

/// Saves (or replaces) a configuration.
pub fn add(name: &str, config: Config) -> Result<(), ConfigError> {
    if name == LOCAL {
        return Err(ConfigError::BadName(name.into(), "it is built in"));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ConfigError::BadName(
            name.into(),
            "use letters, digits, '-', '_' and '.'",
        ));
    }
    let mut file = load()?;
    file.configs.insert(name.to_string(), config);
    save(&file)
}

/// Removes a configuration; false if there was none.
pub fn remove(name: &str) -> Result<bool, ConfigError> {
    let mut file = load()?;
    let removed = file.configs.remove(name).is_some();
    if removed {
        save(&file)?;
    }
    Ok(removed)
}

/// The configuration `name` as a target (`None` for `local`), with headers
/// read from the environment now.
pub fn resolve(name: &str) -> Result<Option<Target>, ConfigError> {
    if name == LOCAL {
        return Ok(None);
    }
    let c = load()?
        .configs
        .remove(name)
        .ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
    let mut headers = c.headers.clone();
    for (header, var) in &c.headers_from_env {
        let value = std::env::var(var).map_err(|_| ConfigError::MissingEnv {
            config: name.to_string(),
            header: header.clone(),
            var: var.clone(),
        })?;
        headers.push((header.clone(), value));
    }
    Ok(Some(Target {
        spec: RemoteSpec {
            url: c.remote,
            instance: c.instance,
            headers,
        },
        exec: c.exec,
    }))
}

/// A header value as `show` prints it: an authorization scheme (`Bearer`,
/// `Basic`) stays readable, the secret after it never does.
pub fn mask(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, _)) if scheme.len() <= 16 => format!("{scheme} ********"),
        _ => "********".to_string(),
    }
}
