//! Components: `cairn build DIR` and `cairn inspect COMPONENT`.

use super::print::*;
use super::*;
use crate::run::session::{self, Error};
use crate::store::blobs::Store;
use std::io::Write;
use std::path::Path;

pub(super) fn inspect(path: &Path, call: Option<&str>, store_dir: &Path) -> Query {
    use crate::workflow::typed::TaskKind;
    if !path.exists() {
        return Err(QueryError::Usage(format!(
            "{}: no such file",
            path.display()
        )));
    }
    let (store, runtime) = session::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?;
    let component = session::store_component(path, &store, &mut |note| eprintln!("{note}"))?;
    let size = std::fs::metadata(&component.path)
        .map_err(|e| QueryError::Host(e.to_string()))?
        .len();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| QueryError::Host(e.to_string()))?;
    let kind = rt.block_on(runtime.inspect(&component, call));
    let imports = rt.block_on(runtime.imports(&component));
    outln!("component  {}", path.display());
    outln!("digest     {}", component.digest);
    outln!("size       {size} bytes");
    let code = match kind {
        Ok(TaskKind::Command) => {
            outln!("kind       command (wasi:cli/run): argv in, files in /in and /out");
            EXIT_OK
        }
        Ok(TaskKind::Typed(sig)) => {
            outln!("kind       typed task");
            outln!("export     {}", sig.describe());
            let outs: Vec<String> = sig
                .outputs()
                .iter()
                .map(|(n, t)| format!("{n}: {}", crate::workflow::typed::describe(t)))
                .collect();
            outln!(
                "outputs    {}",
                if outs.is_empty() {
                    "none".into()
                } else {
                    outs.join(", ")
                }
            );
            EXIT_OK
        }
        Ok(TaskKind::Unusable(why)) | Err(crate::run::outcome::Failure { message: why, .. }) => {
            outln!("kind       unusable: {why}");
            EXIT_JOB_FAILED
        }
    };
    match imports {
        Ok(list) => {
            outln!("imports");
            for (name, provided) in list {
                outln!(
                    "  {} {name}",
                    if provided { "provided" } else { "MISSING " }
                );
            }
        }
        Err(f) => outln!("imports    unreadable: {}", f.message),
    }
    Ok(code)
}

/// `cairn build DIR`.
pub(super) fn build(dir: &Path, json: bool, store_dir: &Path) -> Query {
    if !dir.is_dir() {
        return Err(QueryError::Usage(format!(
            "{}: not a directory (cairn build takes a task source directory)",
            dir.display()
        )));
    }
    let store = Store::open(store_dir).map_err(|e| QueryError::Host(e.to_string()))?;
    let started = std::time::Instant::now();
    let built = crate::build::build_dir(dir, &store).map_err(Error::from)?;
    let path = store.blob_path(&built.stored.digest);
    if json {
        let v = serde_json::json!({
            "dir": dir,
            "language": built.language.to_string(),
            "component": path,
            "digest": built.stored.digest.to_string(),
            "size": built.stored.size,
            "fresh": built.fresh,
            "seconds": started.elapsed().as_secs_f64(),
        });
        outln!("{v}");
    } else {
        outln!(
            "{} {} ({}) in {:.2?}",
            if built.fresh { "built" } else { "up to date" },
            dir.display(),
            built.language,
            started.elapsed()
        );
        outln!("component  {}", path.display());
        outln!("digest     {}", built.stored.digest);
        outln!("size       {} bytes", built.stored.size);
    }
    Ok(EXIT_OK)
}
