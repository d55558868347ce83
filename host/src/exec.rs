//! The real executor: stage inputs, run the component in a fresh sandboxed
//! store, collect outputs and logs into the store.

use crate::cache::{CACHE_FORMAT, Manifest, Value};
use crate::outcome::{Failure, Outcome};
use crate::runtime::{Runtime, output_limit};
use crate::sandbox::{JobDir, SandboxSettings};
use crate::scheduler::{Executor, JobRequest};
use crate::store::Store;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// Runs command components with wasmtime.
pub struct WasmExecutor {
    runtime: Arc<Runtime>,
    store: Arc<Store>,
}

impl WasmExecutor {
    /// An executor over one runtime and one store.
    pub fn new(runtime: Arc<Runtime>, store: Arc<Store>) -> Self {
        WasmExecutor { runtime, store }
    }

    async fn run(&self, req: JobRequest) -> Result<Manifest, Failure> {
        let pre = self
            .runtime
            .command(&req.component, req.limits.fuel.is_some())
            .await?;
        let mut dir = JobDir::create(&self.store, &req.action.inputs)
            .map_err(|e| Failure::host("staging inputs", e))?;
        let settings = SandboxSettings {
            hermetic_seed: req.hermetic.then_some(req.key.0),
            log_limit: req.limits.log,
            output_limit: req.limits.output,
            stdout_is_output: req.action.stdout.is_some(),
        };
        let wasi = dir
            .wasi(&req.name, &req.action.argv, &settings)
            .map_err(|e| Failure::host("preparing the sandbox", e))?;
        let started = Instant::now();
        let ran = self
            .runtime
            .run(&pre, wasi, req.limits, dir.output_usage())
            .await;
        let exec_ms = started.elapsed().as_millis() as u64;
        let collected = ran
            .and_then(|stats| {
                let c = dir.collect(
                    &self.store,
                    &req.action.outputs,
                    req.action.stdout.as_deref(),
                )?;
                // The runtime checks as the job writes; this is the exact total.
                let total: u64 = c.outputs.values().map(Value::size).sum();
                if total > req.limits.output {
                    return Err(output_limit(req.limits.output));
                }
                Ok((c, stats))
            })
            .map_err(|mut failure| {
                // Keep whatever the job printed: it is how people debug it.
                if let Ok((out, err)) = dir.logs(&self.store) {
                    failure.stdout = Some(out);
                    failure.stderr = Some(err);
                }
                failure
            })?;
        let (collected, stats) = collected;
        Ok(Manifest {
            format: CACHE_FORMAT,
            outputs: collected.outputs,
            stdout: collected.stdout,
            stderr: collected.stderr,
            exec_ms,
            peak_memory: stats.peak_memory,
            fuel: stats.fuel,
        })
    }
}

impl Executor for WasmExecutor {
    fn execute(&self, req: JobRequest) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(async move {
            match self.run(req).await {
                Ok(m) => Outcome::Success(m),
                Err(f) => Outcome::Failure(f),
            }
        })
    }
}
