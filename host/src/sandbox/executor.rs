//! The real executor: stage inputs, run the component in a fresh sandboxed
//! store, collect outputs and logs into the store. Command tasks exchange
//! files through `/in` and `/out`; typed tasks exchange values and
//! artifacts through their export's signature.

use crate::run::executor::{Executor, JobRequest};
use crate::run::outcome::{Failure, FailureKind, Outcome};
use crate::sandbox::jobdir::{JobDir, SandboxSettings};
use crate::sandbox::runtime::{
    CommandTask, Entry, JobState, Runtime, TypedInvoke, Wasi, output_limit,
};
use crate::sandbox::task_host::{ArtifactRes, TaskCtx};
use crate::store::action::{CACHE_FORMAT, Manifest, Value};
use crate::store::blobs::Store;
use crate::workflow::typed::{self, Signature, holds_artifacts, is_artifact};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::Store as WasmStore;
use wasmtime::component::{Resource, Type, Val};

/// Runs components with wasmtime.
pub struct LocalExecutor {
    runtime: Arc<Runtime>,
    store: Arc<Store>,
}

impl LocalExecutor {
    /// An executor over one runtime and one store.
    pub fn new(runtime: Arc<Runtime>, store: Arc<Store>) -> Self {
        LocalExecutor { runtime, store }
    }

    async fn run(&self, req: JobRequest) -> Result<Manifest, Failure> {
        let typed = req.typed.clone();
        let fuel = req.limits.fuel.is_some();
        // Typed tasks get no files: their inputs are parameters.
        let staged = if typed.is_some() {
            BTreeMap::new()
        } else {
            req.action.inputs.clone()
        };
        let settings = SandboxSettings {
            hermetic_seed: req.hermetic.then_some(req.key.0),
            log_limit: req.limits.log,
            output_limit: req.limits.output,
            stdout_is_output: req.action.stdout.is_some(),
            preopens: typed.is_none(),
        };
        let mut dir = JobDir::create(&self.store, &staged, &settings)
            .map_err(|e| Failure::host("staging inputs", e))?;
        let mut wasi = dir
            .wasi(&req.name, &req.action.argv, &settings)
            .map_err(|e| Failure::host("preparing the sandbox", e))?;
        let task = TaskCtx::new(self.store.clone(), dir.task_log(), req.secrets.clone());
        let output_usage = dir.output_usage(task.written());
        // A task may print a secret it was given; the stored log never shows it.
        dir.redact(req.secrets.values().cloned().collect());
        let started = Instant::now();
        let mut invoke = typed.as_ref().map(|sig| Invoke {
            sig: sig.clone(),
            action: req.action.clone(),
            store: self.store.clone(),
            outputs: BTreeMap::new(),
        });
        let (command, instance);
        let (entry, wasi) = match &mut invoke {
            None => {
                command = self.runtime.command(&req.component, fuel).await?;
                let wasi = match command {
                    CommandTask::Component(_) => Wasi::P2(wasi.build()),
                    CommandTask::Preview1(_) => Wasi::P1(wasi.build_p1()),
                };
                (command.entry(), wasi)
            }
            Some(invoke) => {
                instance = self.runtime.typed(&req.component, fuel).await?;
                (Entry::Typed(&instance, invoke), Wasi::P2(wasi.build()))
            }
        };
        let ran = self
            .runtime
            .run(entry, wasi, task, req.limits, output_usage)
            .await;
        let exec_ms = started.elapsed().as_millis() as u64;
        let collected = ran
            .and_then(|(stats, reported)| {
                // A typed task's outputs are its results, not files.
                let files: &[String] = if invoke.is_some() {
                    &[]
                } else {
                    &req.action.outputs
                };
                let mut c = dir.collect(&self.store, files, req.action.stdout.as_deref())?;
                if let Some(invoke) = invoke {
                    c.outputs = invoke.outputs;
                }
                // The runtime checks as the job writes; this is the exact total.
                let total: u64 = c.outputs.values().map(Value::size).sum();
                if total > req.limits.output {
                    return Err(output_limit(req.limits.output));
                }
                Ok((c, stats, reported))
            })
            .map_err(|mut failure| {
                failure.message = dir.blank(&failure.message);
                // A full disk fails the guest's writes (its `write` gets
                // ENOSPC, and it gives up its own way): the host's fault.
                let full = failure.kind != FailureKind::Host && self.store.is_full();
                if full {
                    failure = Failure::host(
                        &format!(
                            "no space left on the store's filesystem ({})",
                            self.store.root().display()
                        ),
                        format!("the job failed as it ran ({})", failure.cause()),
                    );
                }
                // Keep whatever the job printed: it is how people debug it.
                // Its outputs are never kept: freeing their space first
                // lets its log be stored even when they filled the disk.
                dir.discard_outputs(full);
                if let Ok((out, err)) = dir.logs(&self.store) {
                    failure.stdout = Some(out);
                    failure.stderr = Some(err);
                }
                failure
            })?;
        let (collected, stats, mut reported) = collected;
        // What the job reported is printed and recorded like its logs.
        reported.labels = reported
            .labels
            .into_iter()
            .map(|(k, v)| (dir.blank(&k), dir.blank(&v)))
            .collect();
        for (name, ..) in &mut reported.metrics {
            *name = dir.blank(name);
        }
        Ok(Manifest {
            format: CACHE_FORMAT,
            outputs: collected.outputs,
            stdout: collected.stdout,
            stderr: collected.stderr,
            exec_ms,
            peak_memory: stats.peak_memory,
            fuel: stats.fuel,
            reported,
        })
    }
}

impl Executor for LocalExecutor {
    fn execute(&self, req: JobRequest) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(async move {
            match self.run(req).await {
                Ok(m) => Outcome::Success(m),
                Err(f) => Outcome::Failure(f),
            }
        })
    }
}

/// One typed call: arguments from literals (canonical JSON) and from the
/// store (artifacts as resources, values decoded), results into outputs.
struct Invoke {
    sig: Arc<Signature>,
    action: crate::store::action::ActionInputs,
    store: Arc<Store>,
    outputs: BTreeMap<String, Value>,
}

impl TypedInvoke for Invoke {
    fn export(&self) -> &str {
        &self.sig.export
    }

    fn args(&mut self, wasm: &mut WasmStore<JobState>) -> Result<Vec<Val>, Failure> {
        let mut args = Vec::with_capacity(self.sig.params.len());
        for (name, ty) in &self.sig.params {
            let val = match (self.action.args.get(name), self.action.inputs.get(name)) {
                (Some(json), _) => typed::from_json(json, ty).map_err(|e| input(name, e))?,
                (None, Some(value)) => self
                    .value_to_val(wasm, value, ty)
                    .map_err(|e| input(name, e))?,
                (None, None) => return Err(input(name, "no value was given".into())),
            };
            args.push(val);
        }
        Ok(args)
    }

    fn results(
        &mut self,
        wasm: &mut WasmStore<JobState>,
        results: Vec<Val>,
    ) -> Result<(), Failure> {
        let (Some(mut val), Some(mut ty)) = (results.into_iter().next(), self.sig.result.clone())
        else {
            return Ok(());
        };
        if let (Val::Result(r), Type::Result(rt)) = (&val, &ty) {
            match r {
                Err(e) => {
                    let reason = match e.as_deref() {
                        Some(Val::String(s)) => s.clone(),
                        Some(v) => typed::to_json(v).map_or_else(|e| e, |j| j.to_string()),
                        None => "the task returned an error".to_string(),
                    };
                    return Err(Failure::new(FailureKind::Guest, reason));
                }
                Ok(None) => return Ok(()),
                Ok(Some(v)) => {
                    let ok = rt.ok().expect("an ok value has an ok type");
                    val = (**v).clone();
                    ty = ok;
                }
            }
        }
        let named: Vec<(String, Val, Type)> = match (val, &ty) {
            (Val::Record(fields), Type::Record(r)) => fields
                .into_iter()
                .zip(r.fields())
                .map(|((n, v), f)| (n, v, f.ty))
                .collect(),
            (Val::Tuple(items), Type::Tuple(t)) => items
                .into_iter()
                .zip(t.types())
                .enumerate()
                .map(|(i, (v, t))| (i.to_string(), v, t))
                .collect(),
            (v, t) => vec![("out".to_string(), v, t.clone())],
        };
        for (name, v, t) in named {
            let value = self.output_value(wasm, v, &t).map_err(|e| {
                Failure::new(FailureKind::BadOutput, format!("output `{name}`: {e}"))
            })?;
            self.outputs.insert(name, value);
        }
        Ok(())
    }
}

fn input(name: &str, e: String) -> Failure {
    Failure::new(FailureKind::Input, format!("parameter `{name}`: {e}"))
}

impl Invoke {
    fn value_to_val(
        &self,
        wasm: &mut WasmStore<JobState>,
        value: &Value,
        ty: &Type,
    ) -> Result<Val, String> {
        match (value, ty) {
            (Value::Blob { digest, size }, t) if is_artifact(t) => {
                let res = wasm
                    .data_mut()
                    .table()
                    .push(ArtifactRes {
                        digest: *digest,
                        size: *size,
                    })
                    .map_err(|e| e.to_string())?;
                let any = res
                    .try_into_resource_any(&mut *wasm)
                    .map_err(|e| e.to_string())?;
                Ok(Val::Resource(any))
            }
            (Value::List(items), Type::List(l)) => items
                .iter()
                .map(|i| self.value_to_val(wasm, i, &l.ty()))
                .collect::<Result<_, _>>()
                .map(Val::List),
            (Value::Blob { digest, .. }, t) => {
                let bytes = self.store.read(digest).map_err(|e| e.to_string())?;
                let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
                    format!(
                        "an artifact of {} bytes is not a {} value",
                        bytes.len(),
                        typed::describe(t)
                    )
                })?;
                typed::from_json(&json, t)
            }
            (Value::List(_), t) => Err(format!("a list where {} is expected", typed::describe(t))),
        }
    }

    fn output_value(
        &self,
        wasm: &mut WasmStore<JobState>,
        v: Val,
        ty: &Type,
    ) -> Result<Value, String> {
        match (v, ty) {
            (Val::Resource(any), t) if is_artifact(t) => {
                let res = Resource::<ArtifactRes>::try_from_resource_any(any, &mut *wasm)
                    .map_err(|e| e.to_string())?;
                let art = wasm
                    .data_mut()
                    .table()
                    .delete(res)
                    .map_err(|e| e.to_string())?;
                Ok(Value::Blob {
                    digest: art.digest,
                    size: art.size,
                })
            }
            (Val::List(items), Type::List(l)) if holds_artifacts(&l.ty()) => items
                .into_iter()
                .map(|i| self.output_value(wasm, i, &l.ty()))
                .collect::<Result<_, _>>()
                .map(Value::List),
            (v, t) if !holds_artifacts(t) => {
                let json = typed::to_json(&v)?;
                let stored = self
                    .store
                    .put_bytes(json.to_string().as_bytes())
                    .map_err(|e| e.to_string())?;
                Ok(Value::Blob {
                    digest: stored.digest,
                    size: stored.size,
                })
            }
            (_, t) => Err(format!(
                "{} holds artifacts inside another value; return them as a record field or a list",
                typed::describe(t)
            )),
        }
    }
}
