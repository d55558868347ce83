//! Every route of the web view, in one [`Router`] built from the [`State`]:
//! pages (`/`, `/runs/…`), their data as JSON (`/api/…`), downloads
//! streamed from the store, the live event stream, and the embedded
//! assets. Handlers are small: they parse what the path names, read a view
//! (`data`) off the async threads, and render it (`pages`) or serialise it.

use super::data::{self, RunSummary, ViewError};
use super::{State, dag, live, pages};
use crate::store::action::Value;
use crate::store::digest::Digest;
use crate::store::records::{Records, RunRow, RunStatus};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use std::io::Read;

/// The web view's routes over `state`.
pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(runs_page))
        .route("/runs/{run}", get(run_page))
        .route("/runs/{run}/jobs/{job}", get(job_page))
        .route("/assets/{file}", get(asset))
        .route("/api/runs", get(runs_json))
        .route("/api/runs/{run}", get(run_json))
        .route("/api/runs/{run}/dag.svg", get(dag_svg))
        .route("/api/runs/{run}/events", get(live::events))
        .route("/api/runs/{run}/jobs/{job}", get(job_json))
        .route("/api/runs/{run}/jobs/{job}/logs/{stream}", get(log))
        .route("/api/runs/{run}/jobs/{job}/outputs/{name}", get(output))
        .route(
            "/api/runs/{run}/jobs/{job}/outputs/{name}/{*index}",
            get(output_at),
        )
        .route("/api/runs/{run}/jobs/{job}/inputs/{name}", get(input))
        .route(
            "/api/runs/{run}/jobs/{job}/inputs/{name}/{*index}",
            get(input_at),
        )
        .fallback(not_found)
        .layer(axum::middleware::map_response(secure))
        .with_state(state)
}

/// Headers on every response: the page may load only its own assets (so
/// nothing comes from elsewhere, and nothing injected runs), may not be
/// framed, and its types are not guessed.
async fn secure(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// A failed API request: JSON `{"error": …}` with the status it deserves.
pub struct ApiError(pub ViewError);

impl From<ViewError> for ApiError {
    fn from(e: ViewError) -> Self {
        ApiError(e)
    }
}

fn status_of(e: &ViewError) -> StatusCode {
    match e {
        ViewError::NotFound(_) => StatusCode::NOT_FOUND,
        ViewError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ViewError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            status_of(&self.0),
            axum::Json(serde_json::json!({ "error": self.0.to_string() })),
        )
            .into_response()
    }
}

/// A failed page: the same error, as a page.
pub struct PageError(pub ViewError);

impl From<ViewError> for PageError {
    fn from(e: ViewError) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let code = status_of(&self.0);
        (code, Html(pages::error(code.as_u16(), &self.0.to_string()))).into_response()
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    let e = ViewError::NotFound(format!("no page at {}", uri.path()));
    if uri.path().starts_with("/api/") {
        ApiError(e).into_response()
    } else {
        PageError(e).into_response()
    }
}

/// A run id (or a unique prefix of one) as `cairn` makes them.
fn check_run_id(run: &str) -> Result<(), ViewError> {
    if (1..=64).contains(&run.len())
        && run
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        Ok(())
    } else {
        Err(ViewError::BadRequest(format!(
            "`{run}` is not a run id (run ids are lowercase letters and digits)"
        )))
    }
}

/// The run a path names, by id or unique prefix.
pub fn find_run(records: &Records, run: &str) -> Result<RunRow, ViewError> {
    check_run_id(run)?;
    let id = records.resolve(run)?;
    Ok(records.run(&id)?)
}

/// `?workflow=W&status=S&limit=N`; empty values (an untouched form) mean all.
#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs in this state.
    pub status: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<usize>,
}

impl RunsQuery {
    fn workflow(&self) -> Option<&str> {
        self.workflow.as_deref().filter(|w| !w.is_empty())
    }

    fn status(&self) -> Result<Option<RunStatus>, ViewError> {
        match self.status.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => [
                RunStatus::Running,
                RunStatus::Succeeded,
                RunStatus::Failed,
                RunStatus::Interrupted,
            ]
            .into_iter()
            .find(|r| r.as_str() == s)
            .map(Some)
            .ok_or_else(|| {
                ViewError::BadRequest(format!(
                    "status `{s}`: expected running, succeeded, failed or interrupted"
                ))
            }),
        }
    }
}

async fn runs(
    state: &State,
    q: RunsQuery,
) -> Result<(Vec<RunSummary>, Vec<String>, RunsQuery), ViewError> {
    let status = q.status()?;
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let st = state.clone();
    state
        .read(move |records, _| {
            let rows = records.runs(q.workflow(), status, limit)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(RunSummary::new(r, st.counts(records, r)?));
            }
            Ok((out, records.workflows()?, q))
        })
        .await
}

async fn runs_page(
    Shared(state): Shared<State>,
    Query(q): Query<RunsQuery>,
) -> Result<Html<String>, PageError> {
    let (runs, workflows, q) = runs(&state, q).await?;
    Ok(Html(pages::runs(
        &runs,
        &workflows,
        q.workflow(),
        q.status.as_deref(),
        state.root(),
    )))
}

async fn runs_json(
    Shared(state): Shared<State>,
    Query(q): Query<RunsQuery>,
) -> Result<axum::Json<Vec<RunSummary>>, ApiError> {
    Ok(axum::Json(runs(&state, q).await?.0))
}

async fn run_view(state: &State, run: String) -> Result<data::RunView, ViewError> {
    state
        .read(move |records, _| data::run_view(records, &find_run(records, &run)?))
        .await
}

/// The DAG of a run's jobs, as the run page and `dag.svg` draw it.
pub fn dag_nodes(view: &data::RunView) -> (Vec<Vec<usize>>, Vec<String>) {
    let index: std::collections::HashMap<i64, usize> = view
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.id, i))
        .collect();
    let deps = view
        .jobs
        .iter()
        .map(|j| {
            j.deps
                .iter()
                .filter_map(|d| index.get(d).copied())
                .collect()
        })
        .collect();
    let notes = view.jobs.iter().map(pages::note).collect();
    (deps, notes)
}

fn draw(view: &data::RunView, standalone: bool) -> String {
    let (deps, notes) = dag_nodes(view);
    let nodes: Vec<dag::Node<'_>> = view
        .jobs
        .iter()
        .zip(&deps)
        .zip(notes)
        .map(|((j, d), note)| dag::Node {
            name: &j.name,
            deps: d,
            state: &j.status,
            note,
        })
        .collect();
    if standalone {
        dag::svg(&nodes)
    } else {
        dag::svg_inline(&nodes)
    }
}

async fn run_page(
    Shared(state): Shared<State>,
    Path(run): Path<String>,
) -> Result<Html<String>, PageError> {
    let view = run_view(&state, run).await?;
    let svg = draw(&view, false);
    Ok(Html(pages::run(&view, &svg)))
}

async fn run_json(
    Shared(state): Shared<State>,
    Path(run): Path<String>,
) -> Result<axum::Json<data::RunView>, ApiError> {
    Ok(axum::Json(run_view(&state, run).await?))
}

async fn dag_svg(
    Shared(state): Shared<State>,
    Path(run): Path<String>,
) -> Result<Response, ApiError> {
    let view = run_view(&state, run).await?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")],
        draw(&view, true),
    )
        .into_response())
}

async fn job_view(state: &State, run: String, job: String) -> Result<data::JobView, ViewError> {
    let st = state.clone();
    state
        .read(move |records, store| {
            let row = find_run(records, &run)?;
            let counts = st.counts(records, &row)?;
            data::job_view(records, store, &row, counts, &job)
        })
        .await
}

async fn job_page(
    Shared(state): Shared<State>,
    Path((run, job)): Path<(String, String)>,
) -> Result<Html<String>, PageError> {
    Ok(Html(pages::job(&job_view(&state, run, job).await?)))
}

async fn job_json(
    Shared(state): Shared<State>,
    Path((run, job)): Path<(String, String)>,
) -> Result<axum::Json<data::JobView>, ApiError> {
    Ok(axum::Json(job_view(&state, run, job).await?))
}

async fn log(
    Shared(state): Shared<State>,
    Path((run, job, stream)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (digest, name) = state
        .read(move |records, _| {
            let row = find_run(records, &run)?;
            let j = data::job_row(records, &row, &job)?;
            let digest = match stream.as_str() {
                "stdout" => j.stdout,
                "stderr" => j.stderr,
                _ => {
                    return Err(ViewError::NotFound(format!(
                        "`{stream}`: a job's logs are stdout and stderr"
                    )));
                }
            };
            let digest = digest.ok_or_else(|| {
                ViewError::NotFound(format!("job `{job}` has no {stream} recorded"))
            })?;
            Ok((digest, format!("{job}.{stream}.txt")))
        })
        .await?;
    let d: Digest = digest
        .parse()
        .map_err(|e| ViewError::Internal(format!("a log digest in the records: {e}")))?;
    blob(&state, d, None, &name, "text/plain; charset=utf-8", false)
}

#[derive(Clone, Copy)]
enum Side {
    Input,
    Output,
}

async fn value(
    state: State,
    side: Side,
    run: String,
    job: String,
    name: String,
    index: String,
) -> Result<Response, ApiError> {
    let (value, file) = state
        .read(move |records, _| {
            let row = find_run(records, &run)?;
            let j = data::job_row(records, &row, &job)?;
            let value = match side {
                Side::Output => records
                    .job_outputs(&row.id, j.job)?
                    .into_iter()
                    .find(|o| o.name == name)
                    .map(|o| o.value),
                Side::Input => j
                    .key_inputs
                    .as_ref()
                    .and_then(|k| k.inputs.get(&name).cloned()),
            }
            .ok_or_else(|| {
                let what = match side {
                    Side::Output => "output",
                    Side::Input => "input",
                };
                ViewError::NotFound(format!(
                    "job `{job}` of run {} has no {what} `{name}`",
                    row.id
                ))
            })?;
            let indexes: Vec<&str> = index.split('/').filter(|s| !s.is_empty()).collect();
            let v = data::value_at(&value, &indexes)?.clone();
            let mut file = format!("{job}.{name}");
            for i in indexes {
                file.push('.');
                file.push_str(i);
            }
            Ok((v, file))
        })
        .await?;
    match value {
        Value::Blob { digest, size } => blob(
            &state,
            digest,
            Some(size),
            &file,
            "application/octet-stream",
            true,
        ),
        Value::List(items) => Err(ApiError(ViewError::NotFound(format!(
            "this value is a list of {} items: add /0 … /{} to the path for one",
            items.len(),
            items.len().saturating_sub(1)
        )))),
    }
}

async fn output(
    Shared(state): Shared<State>,
    Path((run, job, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    value(state, Side::Output, run, job, name, String::new()).await
}

async fn output_at(
    Shared(state): Shared<State>,
    Path((run, job, name, index)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    value(state, Side::Output, run, job, name, index).await
}

async fn input(
    Shared(state): Shared<State>,
    Path((run, job, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    value(state, Side::Input, run, job, name, String::new()).await
}

async fn input_at(
    Shared(state): Shared<State>,
    Path((run, job, name, index)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    value(state, Side::Input, run, job, name, index).await
}

/// How much of a blob is read and sent at a time.
const CHUNK: usize = 256 << 10;

/// Streams a blob from the store, hashing it on the way: if the bytes are
/// not those the digest names, the response is cut off with an error
/// instead of finishing, so a damaged blob never arrives as if whole.
fn blob(
    state: &State,
    digest: Digest,
    size: Option<u64>,
    file: &str,
    content_type: &'static str,
    attachment: bool,
) -> Result<Response, ApiError> {
    let path = state.inner.store.blob_path(&digest);
    let mut f = std::fs::File::open(&path).map_err(|e| {
        ViewError::NotFound(format!(
            "blob {digest} is not in the store ({e}); was it collected?"
        ))
    })?;
    let len = f
        .metadata()
        .map_err(|e| ViewError::Internal(format!("blob {digest}: {e}")))?
        .len();
    if size.is_some_and(|s| s != len) {
        return Err(ApiError(ViewError::Internal(format!(
            "blob {digest} holds {len} bytes, but the records say {}",
            size.unwrap_or_default()
        ))));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut hasher = blake3::Hasher::new();
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            buf.truncate(n);
            hasher.update(&buf);
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return; // The client went away.
            }
        }
        if Digest::from(hasher.finalize()) != digest {
            let _ = tx.blocking_send(Err(std::io::Error::other(format!(
                "blob {digest} is damaged: its bytes do not match its digest (see `cairn store verify`)"
            ))));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let safe: String = file
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "{}; filename=\"{safe}\"",
        if attachment { "attachment" } else { "inline" }
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&digest.to_hex()) {
        headers.insert("x-cairn-digest", v);
    }
    Ok((headers, Body::from_stream(stream)).into_response())
}

/// The assets compiled into the binary: (name, content type, bytes).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("assets/favicon.svg"),
    ),
];

/// The stylesheet: the page's own and the DAG's colours.
static STYLE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{}\n{}", include_str!("assets/style.css"), dag::STYLE));

async fn asset(Path(file): Path<String>) -> Result<Response, PageError> {
    let found = if file == "style.css" {
        Some(("text/css; charset=utf-8", STYLE.as_str()))
    } else {
        ASSETS
            .iter()
            .find(|a| a.0 == file)
            .map(|&(_, t, body)| (t, body))
    };
    // Only names in the table: a path never reaches the filesystem.
    let (content_type, body) =
        found.ok_or_else(|| ViewError::NotFound(format!("no asset `{file}`")))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response())
}
