//! Following a run as it goes: `/api/runs/RUN/events` is a stream of
//! server-sent events. The first `state` event holds every job; each later
//! one only the jobs that changed since, read from the records every
//! [`POLL`]; an `end` event follows once the run has ended, and the stream
//! closes. The records are the only source (the run may be in another
//! process), and reading them is all this does.
//!
//! A `state` event's data is JSON:
//! `{"run": {"status", "ended_ms", "counts"}, "jobs": [[id, status, started_ms, ended_ms], …]}`.

use super::State;
use super::data::shown_status;
use super::routes::{ApiError, find_run};
use crate::store::records::{Progress, RunStatus, StatusCounts};
use axum::extract::{Path, State as Shared};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use std::convert::Infallible;
use std::time::Duration;

/// How often a running run's records are read again.
pub const POLL: Duration = Duration::from_millis(250);

struct Follow {
    state: State,
    run: String,
    last: Option<Vec<Progress>>,
    phase: Phase,
}

enum Phase {
    Watching,
    /// The run ended: send `end`, then stop.
    End(RunStatus),
    Done,
}

/// The event stream of one run.
pub async fn events(
    Shared(state): Shared<State>,
    Path(run): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // An unknown run is a plain 404, not a stream that ends at once.
    let id = state
        .read(move |records, _| Ok(find_run(records, &run)?.id))
        .await?;
    let follow = Follow {
        state,
        run: id,
        last: None,
        phase: Phase::Watching,
    };
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        match f.phase {
            Phase::Done => return None,
            Phase::End(status) => {
                f.phase = Phase::Done;
                return Some((Ok(Event::default().event("end").data(status.as_str())), f));
            }
            Phase::Watching => {}
        }
        loop {
            let run = f.run.clone();
            let read = f
                .state
                .read(move |records, _| {
                    let row = find_run(records, &run)?;
                    Ok((row.status, row.ended_ms, records.job_progress(&run)?))
                })
                .await;
            let (status, ended_ms, mut now) = match read {
                Ok(x) => x,
                Err(e) => {
                    // Say why and stop; the page keeps what it has.
                    f.phase = Phase::Done;
                    let data = serde_json::json!({ "error": e.to_string() }).to_string();
                    return Some((Ok(Event::default().event("fault").data(data)), f));
                }
            };
            for p in &mut now {
                p.1 = shown_status(status, &p.1);
            }
            let changed: Vec<&Progress> = match &f.last {
                None => now.iter().collect(),
                Some(last) => now
                    .iter()
                    .enumerate()
                    .filter(|(i, p)| last.get(*i) != Some(*p))
                    .map(|(_, p)| p)
                    .collect(),
            };
            if f.last.is_none() || !changed.is_empty() || status.is_final() {
                let data = serde_json::json!({
                    "run": { "status": status, "ended_ms": ended_ms, "counts": counts(&now) },
                    "jobs": changed,
                })
                .to_string();
                f.last = Some(now);
                if status.is_final() {
                    f.phase = Phase::End(status);
                }
                return Some((Ok(Event::default().event("state").data(data)), f));
            }
            tokio::time::sleep(POLL).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn counts(now: &[Progress]) -> StatusCounts {
    let mut c = StatusCounts::default();
    for p in now {
        c.add(&p.1, 1);
    }
    c
}
