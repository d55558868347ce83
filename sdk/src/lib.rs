//! Guest-side helpers for writing Cairn tasks, compiled to `wasm32-wasip2`.
//!
//! Cairn runs two kinds of task:
//!
//! - a [*command task*](#command-tasks) is a program with a `fn main()`; its
//!   inputs and outputs are files and its arguments are the job's `args:`;
//! - a [*typed task*](#typed-tasks) is a component that exports one
//!   function. The function's WIT signature is the task's interface: its
//!   parameters are what the job's `with:` supplies, its result is what the
//!   job outputs, and files are *artifacts*, resources of the `cairn:task`
//!   package (Cairn's `wit/task.wit`).
//!
//! # Command tasks
//!
//! A command task is a plain Rust program with a `fn main()`, compiled to
//! `wasm32-wasip2`, that Cairn runs in a sandbox:
//!
//! - its arguments (`std::env::args()`) are the job's `args:`;
//! - each declared input is a read-only file `/in/<name>`; a *list* input is
//!   a directory `/in/<name>/` holding the files `0`, `1`, … `n-1`;
//! - each declared output must be written to `/out/<name>`; a *list* output
//!   is a directory `/out/<name>/` holding the files `0`, `1`, … `n-1`. The
//!   job fails if a declared output is missing, and symbolic links under
//!   `/out` are rejected;
//! - stdout and stderr are the job's log (a job may keep stdout as an output);
//! - there are no environment variables, no network and no other files;
//! - exit status 0 means success, anything else failure.
//!
//! This crate wraps that contract in a few functions: [`input`],
//! [`input_string`], [`open_input`], [`input_path`] and [`input_list`] to
//! read inputs; [`output`], [`create_output`] and [`output_list`] (with
//! [`ListWriter`]) to write outputs; and [`run`] to turn the task's result
//! into an exit status. Names are checked before use: an empty name, `.`,
//! `..`, or a name containing `/` is rejected with
//! [`io::ErrorKind::InvalidInput`]. Every I/O error names the input or output
//! it concerns, so reporting it is enough to explain a failure.
//!
//! The free functions work on the sandbox directories `/in` and `/out`. The
//! same operations are methods of [`Dirs`], which can point elsewhere, so a
//! task's logic can be unit-tested natively against temporary directories.
//!
//! ## Example
//!
//! A job in a workflow:
//!
//! ```yaml
//! jobs:
//!   number:
//!     uses: tasks/number
//!     args: [--prefix, "> "]
//!     inputs:
//!       text: data/poem.txt
//!       notes: ${{ jobs.collect.outputs.notes }}   # a list
//!     outputs: [lines, summary]                    # `lines` is a list
//! ```
//!
//! and the complete `src/main.rs` of `tasks/number`:
//!
//! ```no_run
//! use std::io::Write;
//!
//! fn main() {
//!     cairn_sdk::run(|| -> Result<(), Box<dyn std::error::Error>> {
//!         let args: Vec<String> = std::env::args().skip(1).collect();
//!         let prefix = match args.as_slice() {
//!             [flag, prefix] if flag == "--prefix" => prefix.clone(),
//!             _ => return Err(format!("usage: number --prefix P (got {args:?})").into()),
//!         };
//!
//!         // A single input: the file /in/text.
//!         let text = cairn_sdk::input_string("text")?;
//!
//!         // A list output: /out/lines/0, /out/lines/1, …
//!         let mut lines = cairn_sdk::output_list("lines")?;
//!         for line in text.lines() {
//!             lines.push(format!("{prefix}{line}\n"))?;
//!         }
//!
//!         // A list input: /in/notes/0, /in/notes/1, … in numeric order.
//!         let notes = cairn_sdk::input_list("notes")?;
//!
//!         // A single output written incrementally: /out/summary.
//!         let mut summary = std::io::BufWriter::new(cairn_sdk::create_output("summary")?);
//!         writeln!(summary, "{} lines, {} notes", lines.len(), notes.len())?;
//!         for (i, note) in notes.iter().enumerate() {
//!             writeln!(summary, "note {i}: {} bytes", std::fs::metadata(note)?.len())?;
//!         }
//!         summary.flush()?;
//!
//!         eprintln!("numbered {} lines", lines.len()); // goes to the job's log
//!         Ok(())
//!     })
//! }
//! ```
//!
//! On error, [`run`] prints `error: <message>` to stderr and exits with
//! status 1, which fails the job.
//!
//! # Typed tasks
//!
//! A typed task is a library crate built as a `cdylib` for `wasm32-wasip2`,
//! whose WIT world includes `cairn:task/task@0.1.0` and exports a single
//! function. Its bindings come from [`wit_bindgen::generate!`]; this crate
//! holds the [`bindings`] of the `cairn:task` interfaces themselves, which the
//! task's bindings reuse, and the helpers built on them:
//!
//! - [`Artifact`] reads an artifact (an owned or borrowed [`ArtifactHandle`]):
//!   [`digest`](Artifact::digest), [`size`](Artifact::size),
//!   [`read_bytes`](Artifact::read_bytes), [`read_string`](Artifact::read_string),
//!   and [`std::io::Read`] in bounded memory;
//! - [`Writer`] makes a new artifact through [`std::io::Write`], and
//!   [`Writer::finish`] returns its [`ArtifactHandle`];
//! - [`trace!`], [`debug!`], [`info!`], [`warn!`] and [`error!`] log to the
//!   job's log (as [`log`] does); [`metric`] and [`label`] record metrics
//!   and labels; [`secret`] reads a secret the job declared.
//!
//! The exported function's parameters are the job's `with:` values (an
//! artifact parameter is a `borrow<artifact>`); its result becomes the job's
//! outputs (a record's fields are named outputs); a `result<_, string>` error
//! fails the job with the error as the reason.
//!
//! ## Example
//!
//! A task that splits a text into `count` artifacts at line boundaries. Its
//! world, `wit/split.wit` in the task's crate:
//!
//! ```wit
//! package example:split;
//!
//! world split {
//!   include cairn:task/task@0.1.0;
//!   use cairn:task/artifacts@0.1.0.{artifact};
//!
//!   record parts { chunks: list<artifact>, lines: u64 }
//!
//!   export split: func(text: borrow<artifact>, count: u32) -> result<parts, string>;
//! }
//! ```
//!
//! Its `Cargo.toml` (here the crate is `tasks/split/` in the Cairn
//! repository, next to `sdk/` and `wit/`):
//!
//! ```toml
//! [package]
//! name = "split"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! cairn-sdk = { path = "../../sdk" }
//! wit-bindgen = "0.63" # the version cairn-sdk uses
//! ```
//!
//! And its `src/lib.rs`:
//!
//! ```ignore
//! use std::io::Write;
//!
//! use cairn_sdk::{Artifact, ArtifactHandle, Writer, info};
//!
//! mod bindings {
//!     wit_bindgen::generate!({
//!         // Cairn's `wit/` (cairn:task and the WASI packages it uses), then
//!         // this task's own `wit/`, which depends on it.
//!         path: ["../../wit", "wit"],
//!         // With two packages the world's name must be fully qualified.
//!         world: "example:split/split",
//!         // Use cairn-sdk's bindings of cairn:task, so that `artifact` is
//!         // `cairn_sdk::ArtifactHandle` and the helpers work on it…
//!         with: {
//!             "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
//!             "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
//!         },
//!         // …and generate the WASI interfaces of `wasi:cli/imports` here.
//!         generate_all,
//!     });
//! }
//!
//! use bindings::Parts;
//!
//! struct Split;
//!
//! impl bindings::Guest for Split {
//!     fn split(text: &ArtifactHandle, count: u32) -> Result<Parts, String> {
//!         if count == 0 {
//!             return Err("count must be at least 1".to_string());
//!         }
//!         let text = Artifact::borrowed(text).read_string().map_err(|e| e.to_string())?;
//!         let lines: Vec<&str> = text.split_inclusive('\n').collect();
//!         info!("splitting {} lines into {count} parts", lines.len());
//!
//!         // Part `i` holds lines `i*n/count .. (i+1)*n/count`.
//!         let (n, count) = (lines.len(), count as usize);
//!         let mut chunks = Vec::with_capacity(count);
//!         for i in 0..count {
//!             let mut writer = Writer::new();
//!             for line in &lines[i * n / count..(i + 1) * n / count] {
//!                 writer.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
//!             }
//!             chunks.push(writer.finish());
//!         }
//!         Ok(Parts { chunks, lines: n as u64 })
//!     }
//! }
//!
//! bindings::export!(Split with_types_in bindings);
//! ```
//!
//! `cargo build --release --target wasm32-wasip2` makes
//! `target/wasm32-wasip2/release/split.wasm`, a component whose only export
//! is the function `split`.
//!
//! ## What a task's `generate!` says
//!
//! Exactly the `path`, `world`, `with` and `generate_all` of the example:
//!
//! - `path` lists Cairn's `wit/` directory first and the task's own `wit/`
//!   last (a later directory may use packages of an earlier one), and
//!   `world` names the task's world in full, `package:name/world`.
//!   (Alternatively, copy `task.wit` and `wit/deps/*` into the task's
//!   `wit/deps/`; then the default `path` and a plain world name work.)
//! - `with` maps the two `cairn:task` interfaces to this crate's
//!   [`bindings`], so the task's bindings use this crate's types:
//!   `artifact` is [`ArtifactHandle`] (a `borrow<artifact>` parameter is a
//!   `&ArtifactHandle`), which [`Artifact`] and [`Writer`] work with.
//!   Interfaces used only through them (`wasi:io/streams`) need no entry.
//! - `generate_all` generates the other interfaces the world imports (the
//!   WASI interfaces of `wasi:cli/imports`, which `task` includes) in the
//!   task's own bindings; `wit-bindgen` requires an entry in `with` or
//!   `generate_all` for each. Only the imports the task actually calls end
//!   up in the component.
//!
//! The task must depend on the same `wit-bindgen` version as this crate
//! (0.63).
//!
//! ## Lists of borrowed artifacts
//!
//! `wit-bindgen`'s Rust generator cannot lift an exported function's
//! `list<borrow<artifact>>` parameter (a fan-in such as
//! `concat: func(parts: list<borrow<artifact>>) -> artifact`): the code it
//! generates does not compile (bytecodealliance/wit-bindgen#811). Such a
//! task adds `skip: ["concat"]` to its `generate!`, which still declares the
//! export in the component's type, and writes the core export itself: the
//! list arrives as a pointer to `len` handles (`u32`) that the host
//! allocated with `cabi_realloc` (free it with alignment 4), each wrapped
//! with `ArtifactHandle::from_handle` and dropped before returning, and the
//! result is returned with `take_handle`. Cairn's
//! `tests/typed-guests/concat` does exactly this.

#![deny(missing_docs)]

use std::fmt::Display;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod typed;

pub use typed::{Artifact, ArtifactHandle, Level, Writer, label, log, metric, secret};

/// Bindings generated by `wit-bindgen` from Cairn's `wit/` directory: the
/// `cairn:task@0.1.0` interfaces `artifacts` and `context`
/// ([`bindings::cairn::task`]), and the `wasi:io@0.2.12` interfaces they use
/// (`error`, `poll` and `streams`, in [`bindings::wasi::io`]).
///
/// A typed task maps the `cairn:task` interfaces of its own bindings here,
/// with `with` in its `wit_bindgen::generate!`:
///
/// ```text
/// with: {
///     "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
///     "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
/// },
/// generate_all,
/// ```
///
/// See [the crate docs](crate#typed-tasks) for the whole invocation.
#[allow(missing_docs, rustdoc::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        inline: "
            package cairn:sdk;

            world bindings {
                import cairn:task/artifacts@0.1.0;
                import cairn:task/context@0.1.0;
            }
        ",
        generate_all,
    });
}

/// The input and output roots a task reads from and writes to.
///
/// [`Dirs::sandbox`] is `/in` and `/out`, the directories Cairn provides; the
/// free functions of this crate ([`input`], [`output`], …) are shorthands for
/// the methods of `Dirs::sandbox()`. [`Dirs::at`] points anywhere else, which
/// is how a task's logic is tested natively:
///
/// ```
/// use cairn_sdk::Dirs;
///
/// // Task logic written against `Dirs` rather than the free functions…
/// fn shout(dirs: &Dirs) -> std::io::Result<()> {
///     let text = dirs.input_string("text")?;
///     dirs.output("loud", text.to_uppercase().as_bytes())
/// }
///
/// // …runs in the sandbox as `shout(&Dirs::sandbox())` and in a test as:
/// let root = std::env::temp_dir().join(format!("shout-doctest-{}", std::process::id()));
/// std::fs::create_dir_all(root.join("in"))?;
/// std::fs::create_dir_all(root.join("out"))?;
/// std::fs::write(root.join("in/text"), "hi")?;
/// shout(&Dirs::at(root.join("in"), root.join("out")))?;
/// assert_eq!(std::fs::read_to_string(root.join("out/loud"))?, "HI");
/// std::fs::remove_dir_all(&root)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Creating a `Dirs` touches no file and reads no environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    in_dir: PathBuf,
    out_dir: PathBuf,
}

impl Dirs {
    /// The sandbox roots: inputs under `/in`, outputs under `/out`.
    pub fn sandbox() -> Self {
        Self::at("/in", "/out")
    }

    /// Inputs under `in_dir` and outputs under `out_dir` (for tests).
    ///
    /// The directories are not created or checked here; `out_dir` must exist
    /// before outputs are written.
    pub fn at(in_dir: impl Into<PathBuf>, out_dir: impl Into<PathBuf>) -> Self {
        Self {
            in_dir: in_dir.into(),
            out_dir: out_dir.into(),
        }
    }

    /// The directory holding the inputs (`/in` in the sandbox).
    pub fn in_dir(&self) -> &Path {
        &self.in_dir
    }

    /// The directory receiving the outputs (`/out` in the sandbox).
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// The path of input `name`: `<in_dir>/<name>`.
    ///
    /// This only builds the path; it does not check that the input exists.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid name (empty, `.`, `..`, or containing `/`
    /// or NUL): input names are normally literals in the task's code, so a
    /// bad one is a bug. The other functions return an error instead.
    pub fn input_path(&self, name: &str) -> PathBuf {
        match check_name(Kind::Input, name) {
            Ok(()) => self.in_dir.join(name),
            Err(e) => panic!("{e}"),
        }
    }

    /// The path of output `name`: `<out_dir>/<name>`, for code that wants
    /// to create the output itself (for example a library that writes to a
    /// path). Nothing is created.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid name, as for [`Dirs::input_path`].
    pub fn output_path(&self, name: &str) -> PathBuf {
        match check_name(Kind::Output, name) {
            Ok(()) => self.out_dir.join(name),
            Err(e) => panic!("{e}"),
        }
    }

    /// Reads the whole of input `name`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a bad name; otherwise the error
    /// from reading the file (for example [`io::ErrorKind::NotFound`] if the
    /// job declares no such input), with the input's name in its message.
    pub fn input(&self, name: &str) -> io::Result<Vec<u8>> {
        let path = self.checked_input(name)?;
        fs::read(&path).map_err(|e| context(e, format_args!("reading input `{name}`"), &path))
    }

    /// Reads the whole of input `name` as UTF-8 text.
    ///
    /// # Errors
    ///
    /// As [`Dirs::input`], and [`io::ErrorKind::InvalidData`] if the input is
    /// not valid UTF-8.
    pub fn input_string(&self, name: &str) -> io::Result<String> {
        let path = self.checked_input(name)?;
        fs::read_to_string(&path)
            .map_err(|e| context(e, format_args!("reading input `{name}`"), &path))
    }

    /// Opens input `name` for reading, to stream it rather than load it
    /// whole. Wrap the file in an [`io::BufReader`] for small reads.
    ///
    /// # Errors
    ///
    /// As [`Dirs::input`].
    pub fn open_input(&self, name: &str) -> io::Result<File> {
        let path = self.checked_input(name)?;
        File::open(&path).map_err(|e| context(e, format_args!("opening input `{name}`"), &path))
    }

    /// The element files of list input `name`, in order: `<in_dir>/<name>/0`,
    /// `<in_dir>/<name>/1`, … (numerically, so `10` comes after `9`). An empty
    /// list is an empty directory and gives an empty vector.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a bad name; the error from reading
    /// the directory (for example if the input is missing or is a single file
    /// rather than a list); or [`io::ErrorKind::InvalidData`] if the entries
    /// are not exactly `0` … `n-1` (an entry that is not a decimal index
    /// without leading zeros, or a missing index).
    pub fn input_list(&self, name: &str) -> io::Result<Vec<PathBuf>> {
        let dir = self.checked_input(name)?;
        let what = format_args!("reading list input `{name}`");
        let mut elements = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| context(e, what, &dir))? {
            let entry = entry.map_err(|e| context(e, what, &dir))?;
            let file_name = entry.file_name();
            let index = file_name.to_str().and_then(parse_index).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "list input `{name}` ({}) has an entry {file_name:?} that is not \
                         an element index (0, 1, 2, …)",
                        dir.display()
                    ),
                )
            })?;
            elements.push((index, entry.path()));
        }
        elements.sort_unstable_by_key(|&(index, _)| index);
        // Entry names are distinct and canonical, so after sorting the first
        // index that differs from its position marks a missing element.
        if let Some(missing) = elements.iter().enumerate().position(|(i, (n, _))| *n != i) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "list input `{name}` ({}) has {} entries but no element {missing}",
                    dir.display(),
                    elements.len()
                ),
            ));
        }
        Ok(elements.into_iter().map(|(_, path)| path).collect())
    }

    /// Writes `bytes` as output `name`, replacing it if already written.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a bad name; otherwise the error
    /// from writing the file, with the output's name in its message.
    pub fn output(&self, name: &str, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        let path = self.checked_output(name)?;
        fs::write(&path, bytes)
            .map_err(|e| context(e, format_args!("writing output `{name}`"), &path))
    }

    /// Creates (or truncates) output `name` and returns it open for writing.
    ///
    /// The file is unbuffered: wrap it in an [`io::BufWriter`] for many small
    /// writes, and call [`Write::flush`] at the end so that write errors are
    /// reported rather than lost when the writer is dropped.
    ///
    /// # Errors
    ///
    /// As [`Dirs::output`].
    pub fn create_output(&self, name: &str) -> io::Result<File> {
        let path = self.checked_output(name)?;
        File::create(&path).map_err(|e| context(e, format_args!("creating output `{name}`"), &path))
    }

    /// Creates list output `name`, the directory `<out_dir>/<name>/`, and
    /// returns a [`ListWriter`] that adds its elements `0`, `1`, … in turn.
    ///
    /// The directory exists as soon as this returns, so a list to which
    /// nothing is pushed is a valid, empty list output.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a bad name;
    /// [`io::ErrorKind::AlreadyExists`] if `<out_dir>/<name>` already exists
    /// and is not an empty directory; otherwise the error from creating the
    /// directory.
    pub fn output_list(&self, name: &str) -> io::Result<ListWriter> {
        let dir = self.checked_output(name)?;
        let what = format_args!("creating list output `{name}`");
        match fs::create_dir(&dir) {
            Ok(()) => {}
            // Tolerate an empty directory made beforehand (by an earlier call,
            // or by a host that prepares list outputs), but never reuse one
            // with elements in it, nor follow a symbolic link.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let is_empty_dir = fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir())
                    && fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_none());
                if !is_empty_dir {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!(
                            "{what} ({}): it already exists and is not an empty directory",
                            dir.display()
                        ),
                    ));
                }
            }
            Err(e) => return Err(context(e, what, &dir)),
        }
        Ok(ListWriter {
            name: name.to_owned(),
            dir,
            len: 0,
        })
    }

    fn checked_input(&self, name: &str) -> io::Result<PathBuf> {
        check_name(Kind::Input, name)?;
        Ok(self.in_dir.join(name))
    }

    fn checked_output(&self, name: &str) -> io::Result<PathBuf> {
        check_name(Kind::Output, name)?;
        Ok(self.out_dir.join(name))
    }
}

/// Writes the elements of a list output one after another: the first is
/// file `0`, the next `1`, and so on.
///
/// Made by [`output_list`] (or [`Dirs::output_list`]). Elements are never
/// overwritten; each call adds a new one.
#[derive(Debug)]
pub struct ListWriter {
    name: String,
    dir: PathBuf,
    len: usize,
}

impl ListWriter {
    /// Writes `bytes` as the next element and returns its index.
    ///
    /// # Errors
    ///
    /// The error from creating or writing the element file. If the file was
    /// created but writing failed, the element still counts, so the next
    /// element gets the following index.
    pub fn push(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<usize> {
        let mut file = self.next_file()?;
        let index = self.len - 1;
        file.write_all(bytes.as_ref()).map_err(|e| {
            context(
                e,
                format_args!("writing element {index} of list output `{}`", self.name),
                &self.dir.join(index.to_string()),
            )
        })?;
        Ok(index)
    }

    /// Creates the next element file and returns it open for writing; its
    /// index is `self.len() - 1` afterwards.
    ///
    /// As with [`create_output`], the file is unbuffered: wrap it in an
    /// [`io::BufWriter`] for many small writes and flush it at the end.
    ///
    /// # Errors
    ///
    /// The error from creating the file (then no element is added).
    pub fn next_file(&mut self) -> io::Result<File> {
        let path = self.dir.join(self.len.to_string());
        let file = File::create_new(&path).map_err(|e| {
            context(
                e,
                format_args!(
                    "creating element {} of list output `{}`",
                    self.len, self.name
                ),
                &path,
            )
        })?;
        self.len += 1;
        Ok(file)
    }

    /// The number of elements added so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no element has been added yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The list's directory, `<out_dir>/<name>`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Reads the whole of input `/in/<name>`. See [`Dirs::input`].
///
/// # Errors
///
/// A bad name, or the error from reading the file.
pub fn input(name: &str) -> io::Result<Vec<u8>> {
    Dirs::sandbox().input(name)
}

/// Reads the whole of input `/in/<name>` as UTF-8 text. See
/// [`Dirs::input_string`].
///
/// # Errors
///
/// A bad name, the error from reading the file, or invalid UTF-8.
pub fn input_string(name: &str) -> io::Result<String> {
    Dirs::sandbox().input_string(name)
}

/// The path `/in/<name>` of an input. See [`Dirs::input_path`].
///
/// # Panics
///
/// If `name` is empty, `.`, `..`, or contains `/` or NUL.
pub fn input_path(name: &str) -> PathBuf {
    Dirs::sandbox().input_path(name)
}

/// The path `/out/<name>` of an output. See [`Dirs::output_path`].
///
/// # Panics
///
/// If `name` is empty, `.`, `..`, or contains `/` or NUL.
pub fn output_path(name: &str) -> PathBuf {
    Dirs::sandbox().output_path(name)
}

/// Opens input `/in/<name>` for reading. See [`Dirs::open_input`].
///
/// # Errors
///
/// A bad name, or the error from opening the file.
pub fn open_input(name: &str) -> io::Result<File> {
    Dirs::sandbox().open_input(name)
}

/// The element files `/in/<name>/0` … `/in/<name>/{n-1}` of a list input,
/// in numeric order. See [`Dirs::input_list`].
///
/// # Errors
///
/// A bad name, the error from reading the directory, or entries that are not
/// exactly `0` … `n-1`.
pub fn input_list(name: &str) -> io::Result<Vec<PathBuf>> {
    Dirs::sandbox().input_list(name)
}

/// Writes `bytes` as output `/out/<name>`. See [`Dirs::output`].
///
/// # Errors
///
/// A bad name, or the error from writing the file.
pub fn output(name: &str, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    Dirs::sandbox().output(name, bytes)
}

/// Creates output `/out/<name>` and returns the (unbuffered) file. See
/// [`Dirs::create_output`].
///
/// # Errors
///
/// A bad name, or the error from creating the file.
pub fn create_output(name: &str) -> io::Result<File> {
    Dirs::sandbox().create_output(name)
}

/// Creates list output `/out/<name>/` and returns a [`ListWriter`] for its
/// elements. See [`Dirs::output_list`].
///
/// # Errors
///
/// A bad name, or the error from creating the directory.
pub fn output_list(name: &str) -> io::Result<ListWriter> {
    Dirs::sandbox().output_list(name)
}

/// Runs a task's body and exits the process with its outcome.
///
/// If `body` returns `Ok(())`, stdout is flushed and the process exits with
/// status 0. If it returns `Err(e)`, `error: {e}` is printed to stderr and the
/// process exits with status 1, which fails the job; a failure to flush
/// stdout (which may be one of the job's outputs) also exits with status 1.
///
/// Any error type that implements [`Display`] works: [`io::Error`],
/// `String`, `Box<dyn std::error::Error>`, `anyhow::Error`, … Annotating the
/// closure's return type lets `?` convert errors into it:
///
/// ```no_run
/// use cairn_sdk::{input, output};
///
/// fn main() {
///     cairn_sdk::run(|| -> std::io::Result<()> {
///         let data = input("data")?;
///         output("size", data.len().to_string())
///     })
/// }
/// ```
///
/// Destructors of values still alive outside `body` do not run, as with
/// [`std::process::exit`]; values owned by `body` are dropped when it
/// returns. A panic in `body` is not caught: it ends the task with a failure
/// status too (on `wasm32-wasip2`, panics abort).
pub fn run<E: Display>(body: impl FnOnce() -> Result<(), E>) -> ! {
    let result = body();
    let code = finish(result, &mut io::stdout(), &mut io::stderr());
    std::process::exit(code)
}

/// Flushes `stdout`, reports an error to `stderr`, and returns the exit status.
fn finish<E: Display>(
    result: Result<(), E>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let flushed = stdout.flush();
    match (result, flushed) {
        (Ok(()), Ok(())) => 0,
        (Err(e), _) => {
            // Nothing better to do if stderr itself fails: the status says it.
            let _ = writeln!(stderr, "error: {e}");
            1
        }
        (Ok(()), Err(e)) => {
            let _ = writeln!(stderr, "error: writing stdout: {e}");
            1
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Input,
    Output,
}

/// Checks that `name` is a single, ordinary path component.
fn check_name(kind: Kind, name: &str) -> io::Result<()> {
    let problem = if name.is_empty() {
        "it is empty"
    } else if name == "." || name == ".." {
        "`.` and `..` are not names"
    } else if name.contains('/') {
        "it contains `/`"
    } else if name.contains('\0') {
        "it contains a NUL byte"
    } else {
        return Ok(());
    };
    let kind = match kind {
        Kind::Input => "input",
        Kind::Output => "output",
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid {kind} name {name:?}: {problem}"),
    ))
}

/// Parses a list element's file name: a decimal index without a sign or
/// leading zeros (`0`, `1`, … `10`, …).
fn parse_index(name: &str) -> Option<usize> {
    let canonical = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_digit())
        && (name == "0" || !name.starts_with('0'));
    if canonical { name.parse().ok() } else { None }
}

/// Adds what was being done, and to which path, to an I/O error's message,
/// keeping its kind.
fn context(error: io::Error, what: std::fmt::Arguments<'_>, path: &Path) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("{what} ({}): {error}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh `<tmp>/cairn-sdk-test-<pid>-<n>/{in,out}`, removed on drop.
    struct Sandbox {
        root: PathBuf,
        dirs: Dirs,
    }

    impl Sandbox {
        fn new() -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let root =
                std::env::temp_dir().join(format!("cairn-sdk-test-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(root.join("in")).unwrap();
            fs::create_dir_all(root.join("out")).unwrap();
            let dirs = Dirs::at(root.join("in"), root.join("out"));
            Self { root, dirs }
        }

        /// Writes `<in>/<rel>`, creating parent directories.
        fn put(&self, rel: &str, bytes: &[u8]) {
            let path = self.root.join("in").join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }

        fn out(&self, rel: &str) -> PathBuf {
            self.root.join("out").join(rel)
        }
    }

    impl Drop for Sandbox {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    #[test]
    fn sandbox_roots() {
        let dirs = Dirs::sandbox();
        assert_eq!(dirs.in_dir(), Path::new("/in"));
        assert_eq!(dirs.out_dir(), Path::new("/out"));
        assert_eq!(input_path("text"), Path::new("/in/text"));
        assert_eq!(output_path("report"), Path::new("/out/report"));
    }

    #[test]
    fn reads_an_input() {
        let sb = Sandbox::new();
        sb.put("text", b"hello\nworld\n");
        let dirs = &sb.dirs;
        assert_eq!(dirs.input("text").unwrap(), b"hello\nworld\n");
        assert_eq!(dirs.input_string("text").unwrap(), "hello\nworld\n");
        let mut streamed = String::new();
        dirs.open_input("text")
            .unwrap()
            .read_to_string(&mut streamed)
            .unwrap();
        assert_eq!(streamed, "hello\nworld\n");
        assert_eq!(dirs.input_path("text"), sb.root.join("in/text"));
    }

    #[test]
    fn input_errors_name_the_input() {
        let sb = Sandbox::new();
        let err = sb.dirs.input("absent").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("input `absent`"), "{err}");
        let err = sb.dirs.open_input("absent").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("input `absent`"), "{err}");

        sb.put("binary", b"\xff\xfe");
        let err = sb.dirs.input_string("binary").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("input `binary`"), "{err}");
    }

    #[test]
    fn list_input_in_numeric_order() {
        let sb = Sandbox::new();
        // Written in a scrambled order; 12 elements so "10" and "11" would
        // sort before "2" lexically.
        for i in [7, 11, 0, 3, 10, 1, 9, 2, 5, 4, 8, 6] {
            sb.put(&format!("parts/{i}"), format!("element {i}").as_bytes());
        }
        let paths = sb.dirs.input_list("parts").unwrap();
        assert_eq!(paths.len(), 12);
        for (i, path) in paths.iter().enumerate() {
            assert_eq!(*path, sb.root.join("in/parts").join(i.to_string()));
            assert_eq!(fs::read_to_string(path).unwrap(), format!("element {i}"));
        }
    }

    #[test]
    fn empty_list_input() {
        let sb = Sandbox::new();
        fs::create_dir(sb.root.join("in/none")).unwrap();
        assert!(sb.dirs.input_list("none").unwrap().is_empty());
    }

    #[test]
    fn list_input_with_a_gap_is_an_error() {
        let sb = Sandbox::new();
        for i in [0, 1, 3] {
            sb.put(&format!("parts/{i}"), b"x");
        }
        let err = sb.dirs.input_list("parts").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let message = err.to_string();
        assert!(message.contains("list input `parts`"), "{message}");
        assert!(message.contains("no element 2"), "{message}");

        // A list not starting at 0 is also missing an element.
        let sb = Sandbox::new();
        sb.put("parts/1", b"x");
        let err = sb.dirs.input_list("parts").unwrap_err();
        assert!(err.to_string().contains("no element 0"), "{err}");
    }

    #[test]
    fn list_input_rejects_other_entry_names() {
        for bad in [
            "01",
            "00",
            "+1",
            "-1",
            "x",
            "1.txt",
            " 1",
            "99999999999999999999999",
        ] {
            let sb = Sandbox::new();
            sb.put("parts/0", b"x");
            sb.put(&format!("parts/{bad}"), b"x");
            let err = sb.dirs.input_list("parts").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{bad:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn list_input_that_is_a_file_is_an_error() {
        let sb = Sandbox::new();
        sb.put("single", b"x");
        let err = sb.dirs.input_list("single").unwrap_err();
        assert!(err.to_string().contains("list input `single`"), "{err}");
        let err = sb.dirs.input_list("absent").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn writes_outputs() {
        let sb = Sandbox::new();
        sb.dirs.output("report", "first").unwrap();
        sb.dirs.output("report", b"second").unwrap();
        assert_eq!(fs::read_to_string(sb.out("report")).unwrap(), "second");

        let mut file = sb.dirs.create_output("stream").unwrap();
        write!(file, "a{}", 1).unwrap();
        file.write_all(b"b").unwrap();
        drop(file);
        assert_eq!(fs::read_to_string(sb.out("stream")).unwrap(), "a1b");
        assert_eq!(sb.dirs.output_path("stream"), sb.out("stream"));
    }

    #[test]
    fn output_errors_name_the_output() {
        let sb = Sandbox::new();
        let dirs = Dirs::at(sb.root.join("in"), sb.root.join("no-such-dir"));
        let err = dirs.output("report", "x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("output `report`"), "{err}");
        let err = dirs.create_output("report").unwrap_err();
        assert!(err.to_string().contains("output `report`"), "{err}");
        let err = dirs.output_list("parts").unwrap_err();
        assert!(err.to_string().contains("list output `parts`"), "{err}");
    }

    #[test]
    fn list_writer_numbers_elements() {
        let sb = Sandbox::new();
        let mut list = sb.dirs.output_list("parts").unwrap();
        assert!(list.is_empty());
        assert_eq!(list.dir(), sb.out("parts"));
        for i in 0..11 {
            assert_eq!(list.push(format!("element {i}")).unwrap(), i);
        }
        let mut file = list.next_file().unwrap();
        file.write_all(b"element 11").unwrap();
        drop(file);
        assert_eq!(list.push(b"element 12").unwrap(), 12);
        assert_eq!(list.len(), 13);
        assert!(!list.is_empty());

        // The list reads back, in order, as a list input.
        let out_as_in = Dirs::at(sb.root.join("out"), sb.root.join("unused"));
        let paths = out_as_in.input_list("parts").unwrap();
        assert_eq!(paths.len(), 13);
        for (i, path) in paths.iter().enumerate() {
            assert_eq!(*path, sb.out("parts").join(i.to_string()));
            assert_eq!(fs::read_to_string(path).unwrap(), format!("element {i}"));
        }
    }

    #[test]
    fn empty_list_output_is_an_empty_directory() {
        let sb = Sandbox::new();
        let list = sb.dirs.output_list("none").unwrap();
        assert_eq!(list.len(), 0);
        assert!(sb.out("none").is_dir());
        assert_eq!(fs::read_dir(sb.out("none")).unwrap().count(), 0);
    }

    #[test]
    fn list_output_is_not_reused_once_written() {
        let sb = Sandbox::new();
        // An empty directory may be taken over…
        sb.dirs.output_list("parts").unwrap();
        let mut list = sb.dirs.output_list("parts").unwrap();
        list.push("x").unwrap();
        // …but not one with elements, nor a plain file.
        let err = sb.dirs.output_list("parts").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("list output `parts`"), "{err}");
        sb.dirs.output("single", "x").unwrap();
        let err = sb.dirs.output_list("single").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        // Elements are never overwritten.
        let mut other = ListWriter {
            name: "parts".into(),
            dir: sb.out("parts"),
            len: 0,
        };
        let err = other.push("y").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(other.len(), 0);
        assert_eq!(fs::read_to_string(sb.out("parts/0")).unwrap(), "x");
    }

    #[test]
    fn bad_names_are_rejected() {
        let sb = Sandbox::new();
        sb.put("ok/0", b"x");
        let dirs = &sb.dirs;
        for bad in ["", ".", "..", "a/b", "/abs", "../escape", "ok/", "nul\0"] {
            let shown = format!("{bad:?}");
            let results: Vec<(&str, io::Error)> = vec![
                ("input", dirs.input(bad).unwrap_err()),
                ("input", dirs.input_string(bad).unwrap_err()),
                ("input", dirs.open_input(bad).unwrap_err()),
                ("input", dirs.input_list(bad).unwrap_err()),
                ("output", dirs.output(bad, "x").unwrap_err()),
                ("output", dirs.create_output(bad).unwrap_err()),
                ("output", dirs.output_list(bad).unwrap_err()),
            ];
            for (kind, err) in results {
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}: {err}");
                let message = err.to_string();
                assert!(
                    message.starts_with(&format!("invalid {kind} name {shown}:")),
                    "{message}"
                );
            }
            let panicked = std::panic::catch_unwind(|| dirs.input_path(bad));
            assert!(panicked.is_err(), "input_path({bad:?}) did not panic");
            let panicked = std::panic::catch_unwind(|| dirs.output_path(bad));
            assert!(panicked.is_err(), "output_path({bad:?}) did not panic");
        }
        // Nothing was created by the rejected calls.
        assert_eq!(fs::read_dir(sb.root.join("out")).unwrap().count(), 0);
        // Unusual but valid names are accepted.
        for good in ["...", ".hidden", "a b", "name.txt", "back\\slash"] {
            dirs.output(good, "x").unwrap();
            assert_eq!(fs::read(sb.out(good)).unwrap(), b"x");
        }
    }

    #[test]
    #[should_panic(expected = "invalid input name \"../x\"")]
    fn input_path_panics_on_a_bad_name() {
        Dirs::sandbox().input_path("../x");
    }

    /// A writer whose flush fails, standing in for a broken stdout.
    struct BrokenPipe;

    impl Write for BrokenPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn finish_maps_results_to_exit_status() {
        let mut stderr = Vec::new();
        assert_eq!(
            finish(Ok::<(), String>(()), &mut Vec::new(), &mut stderr),
            0
        );
        assert!(stderr.is_empty());

        let err = io::Error::new(io::ErrorKind::NotFound, "reading input `x`: gone");
        assert_eq!(finish(Err(err), &mut Vec::new(), &mut stderr), 1);
        assert_eq!(
            String::from_utf8(stderr).unwrap(),
            "error: reading input `x`: gone\n"
        );

        let mut stderr = Vec::new();
        assert_eq!(
            finish(Ok::<(), String>(()), &mut BrokenPipe, &mut stderr),
            1
        );
        assert!(
            String::from_utf8(stderr)
                .unwrap()
                .starts_with("error: writing stdout: ")
        );

        let mut stderr = Vec::new();
        assert_eq!(finish(Err("boom"), &mut BrokenPipe, &mut stderr), 1);
        assert_eq!(String::from_utf8(stderr).unwrap(), "error: boom\n");
    }
}
