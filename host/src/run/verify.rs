//! Re-executing a recorded run to check that its outputs are reproducible
//! (`cairn verify`).

use crate::run::executor::{ComponentRef, Executor, JobRequest};
use crate::run::outcome::Outcome;
use crate::sandbox::executor::LocalExecutor;
use crate::sandbox::runtime::Runtime;
use crate::store::action::Value;
use crate::store::blobs::Store;
use crate::store::records::{RecordError, Records};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// What re-executing one job showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every output is byte-identical to the recorded one.
    Same,
    /// These outputs differ: (name, recorded, now).
    Differs(Vec<(String, Option<Value>, Option<Value>)>),
    /// The job failed this time.
    Failed(String),
    /// Not re-executed (it never ran, or its component is gone), and why.
    NotRun(String),
}

/// Re-executes every job of a recorded run without the cache, in the same
/// sandbox and under the same limits, and compares its outputs with the
/// recorded ones. Jobs are independent here (their inputs are recorded), so
/// up to `jobs` run at once.
pub async fn verify_run(
    store: Arc<Store>,
    runtime: Arc<Runtime>,
    records: &Records,
    run_id: &str,
    jobs: usize,
) -> Result<Vec<(String, Verdict)>, RecordError> {
    let executor = Arc::new(LocalExecutor::new(runtime.clone(), store.clone()));
    let rows = records.jobs(run_id)?;
    let mut recorded: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for o in records.outputs(run_id)? {
        recorded.entry(o.job).or_default().insert(o.name, o.value);
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let mut verdicts = Vec::new();
    for (i, j) in rows.into_iter().enumerate() {
        let Some(action) = j
            .key_inputs
            .clone()
            .filter(|_| matches!(j.status.as_str(), "executed" | "cached"))
        else {
            verdicts.push((
                i,
                j.name.clone(),
                Verdict::NotRun(format!("it is {}", j.status)),
            ));
            continue;
        };
        if !store.contains(&action.component) {
            verdicts.push((
                i,
                j.name.clone(),
                Verdict::NotRun("its component is no longer in the store".into()),
            ));
            continue;
        }
        let component = ComponentRef {
            path: store.blob_path(&action.component),
            digest: action.component,
        };
        let req = JobRequest {
            id: j.job as usize,
            name: j.name.clone(),
            component: component.clone(),
            key: action.key(),
            hermetic: action.sandbox == crate::store::action::SandboxKey::new(true).profile,
            typed: match &action.call {
                None => None,
                Some(call) => match runtime.inspect(&component, Some(call)).await {
                    Ok(crate::workflow::typed::TaskKind::Typed(sig)) => Some(sig),
                    Ok(_) | Err(_) => {
                        verdicts.push((
                            i,
                            j.name.clone(),
                            Verdict::NotRun(format!("its component no longer exports `{call}`")),
                        ));
                        continue;
                    }
                },
            },
            action,
            limits: j.limits.unwrap_or_default(),
            // Secret values are never recorded, so verify runs without them.
            secrets: BTreeMap::new(),
        };
        let before = recorded.remove(&j.name).unwrap_or_default();
        let (executor, permits) = (executor.clone(), permits.clone());
        set.spawn(async move {
            let _permit = permits.acquire().await.expect("never closed");
            let verdict = match executor.execute(req).await {
                Outcome::Success(m) => compare(&before, &m.outputs),
                Outcome::Failure(f) => Verdict::Failed(f.to_string()),
            };
            (i, j.name, verdict)
        });
    }
    while let Some(r) = set.join_next().await {
        verdicts.push(r.expect("verification tasks do not panic"));
    }
    verdicts.sort_by_key(|(i, _, _)| *i);
    Ok(verdicts.into_iter().map(|(_, n, v)| (n, v)).collect())
}

fn compare(before: &BTreeMap<String, Value>, now: &BTreeMap<String, Value>) -> Verdict {
    let names: HashSet<&String> = before.keys().chain(now.keys()).collect();
    let mut diffs: Vec<_> = names
        .into_iter()
        .filter(|n| before.get(*n) != now.get(*n))
        .map(|n| (n.clone(), before.get(n).cloned(), now.get(n).cloned()))
        .collect();
    diffs.sort_by(|a, b| a.0.cmp(&b.0));
    if diffs.is_empty() {
        Verdict::Same
    } else {
        Verdict::Differs(diffs)
    }
}
