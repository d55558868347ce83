//! A typed task's world, made whole: the task's own `wit/` plus cairn's
//! `cairn:task` package and the WASI packages it includes, laid out as
//! `wit-bindgen`, `componentize-py` and `componentize-js` expect (a main
//! package and a `deps/` folder). Authors then keep only their world.

use super::{BuildError, io_err};
use std::fs;
use std::path::{Path, PathBuf};

/// The WIT this cairn serves, embedded so that an installed `cairn` needs
/// no checkout: (directory under `deps/`, file name, contents).
const CAIRN_WIT: &[(&str, &str, &str)] = &[
    (
        "cairn-task",
        "task.wit",
        include_str!("../../../wit/task.wit"),
    ),
    (
        "cli",
        "cli.wit",
        include_str!("../../../wit/deps/cli/cli.wit"),
    ),
    (
        "clocks",
        "clocks.wit",
        include_str!("../../../wit/deps/clocks/clocks.wit"),
    ),
    (
        "filesystem",
        "filesystem.wit",
        include_str!("../../../wit/deps/filesystem/filesystem.wit"),
    ),
    ("io", "io.wit", include_str!("../../../wit/deps/io/io.wit")),
    (
        "random",
        "random.wit",
        include_str!("../../../wit/deps/random/random.wit"),
    ),
    (
        "sockets",
        "sockets.wit",
        include_str!("../../../wit/deps/sockets/sockets.wit"),
    ),
];

/// A task's world, ready for a bindings generator.
#[derive(Debug, Clone)]
pub(super) struct World {
    /// The assembled WIT directory (main package + `deps/`).
    pub dir: PathBuf,
    /// The world's name (the main package has exactly one world).
    pub name: String,
}

impl World {
    /// Assembles `task/wit` with cairn's packages under `root` (by content,
    /// so an unchanged world is assembled once) and finds its world.
    pub fn assemble(task: &Path, root: &Path) -> Result<World, BuildError> {
        let src = task.join("wit");
        let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        for path in super::source_files(&src).map_err(io_err(task))? {
            let rel = path.strip_prefix(&src).expect("under src").to_path_buf();
            if rel.extension().is_some_and(|e| e == "wit") {
                files.push((rel, fs::read(&path).map_err(io_err(task))?));
            }
        }
        // The task's own deps win: it may pin other versions of these.
        for (pkg, name, text) in CAIRN_WIT {
            let deps = Path::new("deps").join(pkg);
            if !files.iter().any(|(p, _)| p.starts_with(&deps)) {
                files.push((deps.join(name), text.as_bytes().to_vec()));
            }
        }
        files.sort();
        let mut h = blake3::Hasher::new();
        for (p, bytes) in &files {
            h.update(p.as_os_str().as_encoded_bytes());
            h.update(&[0]);
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        let dir = root.join(&h.finalize().to_hex()[..16]);
        if !dir.is_dir() {
            // Written aside and renamed, so a concurrent build never sees
            // half a directory.
            fs::create_dir_all(root).map_err(io_err(task))?;
            let tmp = tempfile::tempdir_in(root).map_err(io_err(task))?;
            for (p, bytes) in &files {
                let to = tmp.path().join(p);
                fs::create_dir_all(to.parent().expect("has a parent")).map_err(io_err(task))?;
                fs::write(&to, bytes).map_err(io_err(task))?;
            }
            let tmp = tmp.keep();
            if fs::rename(&tmp, &dir).is_err() {
                // Another build got there first with the same contents.
                let _ = fs::remove_dir_all(&tmp);
            }
        }
        let invalid = |why: String| BuildError::Invalid {
            dir: task.to_path_buf(),
            why,
        };
        let mut resolve = wit_parser::Resolve::default();
        // Errors name the task's own files, not the assembled copies.
        let rendered = |text: String| text.replace(&*dir.to_string_lossy(), &src.to_string_lossy());
        let (pkg, _) = resolve.push_dir(&dir).map_err(|e| {
            invalid(rendered(format!(
                "its wit/ does not resolve: {}",
                resolve.render_error(&e)
            )))
        })?;
        let world = resolve
            .select_world(&[pkg], None)
            .map_err(|e| invalid(format!("wit/ must hold one world: {e:#}")))?;
        Ok(World {
            dir,
            name: resolve.worlds[world].name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_world_is_assembled_with_cairns_packages() {
        let task = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(task.path().join("wit")).unwrap();
        fs::write(
            task.path().join("wit/w.wit"),
            "package t:t;\nworld hello {\n  include cairn:task/task@0.1.0;\n  export hello: func(n: u32) -> string;\n}\n",
        )
        .unwrap();
        let world = World::assemble(task.path(), root.path()).unwrap();
        assert_eq!(world.name, "hello");
        assert!(world.dir.join("deps/cairn-task/task.wit").is_file());
        assert!(world.dir.join("deps/io/io.wit").is_file());
        // Same contents, same directory.
        let again = World::assemble(task.path(), root.path()).unwrap();
        assert_eq!(again.dir, world.dir);
    }

    #[test]
    fn a_broken_world_says_where() {
        let task = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(task.path().join("wit")).unwrap();
        fs::write(
            task.path().join("wit/w.wit"),
            "package t:t;\nworld w {\n  export f: func() -> nope;\n}\n",
        )
        .unwrap();
        let err = World::assemble(task.path(), root.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope") && err.contains("w.wit:3"), "{err}");
    }
}
