//! Remote execution: an [`Executor`] that sends a job to the server's
//! Execution service and waits on its long-running operation. The job's
//! action carries its name and limits (see `action`); its result comes
//! back as a `cairn.out.json`, and every blob it names is fetched into the
//! local store at once, so that a finished job's result is kept here even
//! if the server goes away. A job that declares secrets runs here: secret
//! values never leave this machine.

use crate::remote::action::{self, RunSettings};
use crate::remote::cache::read_result_file;
use crate::remote::client::{Remote, RemoteError};
use crate::run::executor::{Executor, JobRequest};
use crate::run::outcome::{Failure, Outcome};
use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::longrunning::{Operation, operation};
use prost::Message;
use re::execution_client::ExecutionClient;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Runs jobs on the server's workers.
pub struct RemoteExecutor {
    remote: Arc<Remote>,
    local: Arc<dyn Executor>,
    /// Executions open at once: each holds a stream (and, on BuildGrid, a
    /// server thread) until its job ends.
    open: tokio::sync::Semaphore,
}

/// Executions one client keeps open at once.
const OPEN_EXECUTIONS: usize = 24;

impl RemoteExecutor {
    /// Sends jobs to `remote`; jobs that must stay here go to `local`.
    pub fn new(remote: Arc<Remote>, local: Arc<dyn Executor>) -> Self {
        RemoteExecutor {
            remote,
            local,
            open: tokio::sync::Semaphore::new(OPEN_EXECUTIONS),
        }
    }

    async fn run(&self, req: &JobRequest) -> Result<Outcome, RemoteError> {
        let r = &self.remote;
        let run = RunSettings {
            name: req.name.clone(),
            limits: req.limits,
        };
        let encoded = action::encode(&req.action, Some(run), r.as_ref())
            .map_err(|e| r.error("naming a job's inputs", e))?;
        let (digest, blobs) = encoded.into_uploads();
        r.upload(blobs).await?;
        let response = {
            let _open = self.open.acquire().await.expect("never closed");
            self.execute(&digest).await?
        };
        if let Some(s) = response.status.filter(|s| s.code != 0) {
            return Err(r.error(
                "executing a job",
                format!("{:?}: {}", tonic::Code::from_i32(s.code), s.message),
            ));
        }
        let ar = response
            .result
            .ok_or_else(|| r.error("executing a job", "the server sent no result"))?;
        let result = read_result_file(r, &ar).await?;
        // Kept here: a finished job's outputs and logs survive the server.
        let named: Vec<_> = result.names.keys().copied().collect();
        r.fetch(&named).await?;
        Ok(match (result.manifest, result.failure) {
            (Some(m), _) => Outcome::Success(m),
            (None, Some(f)) => Outcome::Failure(f),
            (None, None) => {
                return Err(r.error(
                    "executing a job",
                    "its result says neither success nor failure",
                ));
            }
        })
    }

    /// `Execute`, following the operation to its end (with `WaitExecution`
    /// when the stream breaks).
    async fn execute(&self, digest: &re::Digest) -> Result<re::ExecuteResponse, RemoteError> {
        let r = &self.remote;
        // No deadline of its own: a job may run as long as its limits let it.
        let long = Duration::from_secs(24 * 3600);
        let mut stream = r
            .call("Execute", || async {
                ExecutionClient::new(r.channel())
                    .execute(r.request(
                        re::ExecuteRequest {
                            instance_name: r.instance().to_string(),
                            // Looked up already, under the job's key action.
                            skip_cache_lookup: true,
                            action_digest: Some(digest.clone()),
                            digest_function: r.digest_fn_proto(),
                            ..Default::default()
                        },
                        long,
                    ))
                    .await
            })
            .await?;
        let mut name = String::new();
        let mut broken = 0;
        loop {
            match stream.message().await {
                Ok(Some(op)) => {
                    name = op.name.clone();
                    if op.done {
                        return self.finished(op);
                    }
                }
                Ok(None) | Err(_) if !name.is_empty() && broken < 5 => {
                    broken += 1;
                    tokio::time::sleep(Duration::from_millis(100 << broken)).await;
                    let op_name = name.clone();
                    let op_name = &op_name;
                    stream = r
                        .call("WaitExecution", || async {
                            ExecutionClient::new(r.channel())
                                .wait_execution(r.request(
                                    re::WaitExecutionRequest {
                                        name: op_name.clone(),
                                    },
                                    long,
                                ))
                                .await
                        })
                        .await?;
                }
                Ok(None) => {
                    return Err(r.error("executing a job", "the operation ended unfinished"));
                }
                Err(s) => return Err(r.status("Execute", &s)),
            }
        }
    }

    fn finished(&self, op: Operation) -> Result<re::ExecuteResponse, RemoteError> {
        let r = &self.remote;
        match op.result {
            Some(operation::Result::Response(any)) => re::ExecuteResponse::decode(&any.value[..])
                .map_err(|e| r.error("executing a job", format!("an unreadable response: {e}"))),
            Some(operation::Result::Error(s)) => Err(r.error(
                "executing a job",
                format!("{:?}: {}", tonic::Code::from_i32(s.code), s.message),
            )),
            None => Err(r.error("executing a job", "the operation ended without a result")),
        }
    }
}

impl Executor for RemoteExecutor {
    fn execute(&self, req: JobRequest) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(async move {
            if !req.secrets.is_empty() {
                return self.local.execute(req).await;
            }
            match self.run(&req).await {
                Ok(outcome) => outcome,
                Err(e) => Outcome::Failure(Failure::host("executing remotely", e)),
            }
        })
    }
}
