//! Scale-out onto the Bazel Remote Execution API (REAPI v2): a job is an
//! `Action` (`action`), one shared client speaks to the server (`client`),
//! a remote action cache stacks in front of the local one (`cache`), and
//! saved runtime configurations say which server a run uses (`config`),
//! jobs execute on the server's workers (`exec`), and `cairn worker` is
//! such a worker, a bot of the Remote Workers API (`bots`, `worker`).
//!
//! Owns: every byte that crosses the network, and the mapping between
//! local blake3 names and a server's digests. May not: change what a job
//! computes or its key; a remote failure is an infrastructure error that
//! names the server, never a failed job.

pub mod action;
pub mod bots;
pub mod cache;
pub mod client;
pub mod config;
pub mod exec;
pub mod worker;
