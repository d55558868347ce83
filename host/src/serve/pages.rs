//! The HTML pages, rendered from the views in `data` by plain functions:
//! the runs list, a run (its DAG, live), and a job. Every piece of text
//! from the records is escaped; every link is to this server.

use super::dag::{class, escape};
use super::data::{JobBrief, JobView, LogView, Named, RunSummary, RunView, ValueView, job_url};
use super::plot::{number, plot};
use std::fmt::Write;
use std::path::Path;

/// A page around `body`.
fn page(title: &str, kind: &str, run: Option<&str>, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · cairn</title><link rel="stylesheet" href="/assets/style.css"><link rel="icon" href="/assets/favicon.svg">
<script src="/assets/app.js" defer></script></head>
<body data-page="{kind}"{}><header class="top"><a class="brand" href="/">cairn</a><span class="sub">runs</span></header>
<main>{body}</main></body></html>
"#,
        escape(title),
        run.map(|r| format!(r#" data-run="{}""#, escape(r)))
            .unwrap_or_default()
    )
}

/// An error page.
pub fn error(code: u16, message: &str) -> String {
    page(
        &format!("{code}"),
        "error",
        None,
        &format!(
            r#"<h1>{code}</h1><p class="error">{}</p><p><a href="/">All runs</a></p>"#,
            escape(message)
        ),
    )
}

/// A duration in milliseconds, short: `209ms`, `1.2s`, `3m04s`, `1h02m`.
pub fn dur(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// A size in bytes, short: `372 B`, `1.2 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Unix milliseconds as a UTC date and time (the page shows local time
/// where it can).
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn time(ms: i64) -> String {
    format!(r#"<time datetime="{ms}">{}</time>"#, utc(ms))
}

fn badge(state: &str) -> String {
    let word = if state == "executed" { "done" } else { state };
    format!(
        r#"<span class="badge s-{}">{}</span>"#,
        class(state),
        escape(word)
    )
}

/// What a job's node says under its name.
pub fn note(j: &JobBrief) -> String {
    let took = j.duration_ms.map(dur);
    match (j.status.as_str(), took) {
        ("executed", Some(t)) => format!("done {t}"),
        ("executed", None) => "done".to_string(),
        ("cached", _) => "cached".to_string(),
        ("failed", Some(t)) => format!("failed {t}"),
        (s, _) => s.to_string(),
    }
}

fn counts_line(r: &RunSummary) -> String {
    let c = &r.counts;
    format!(
        r#"<span class="counts"><span id="c-jobs">{}</span> jobs: <span id="c-executed">{}</span> executed, <span id="c-cached">{}</span> cached, <span id="c-failed">{}</span> failed, <span id="c-skipped">{}</span> skipped</span>"#,
        r.jobs, c.executed, c.cached, c.failed, c.skipped
    )
}

/// The runs list, newest first, with its filter.
pub fn runs(
    runs: &[RunSummary],
    workflows: &[String],
    workflow: Option<&str>,
    status: Option<&str>,
    store: &Path,
) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        r#"<h1>Runs</h1><p class="muted">in <code>{}</code></p><form class="filter" method="get" action="/"><label>Workflow <select name="workflow"><option value="">all</option>"#,
        escape(&store.display().to_string())
    );
    for w in workflows {
        let _ = write!(
            b,
            r#"<option value="{0}"{1}>{0}</option>"#,
            escape(w),
            if Some(w.as_str()) == workflow {
                " selected"
            } else {
                ""
            }
        );
    }
    b.push_str(
        r#"</select></label> <label>State <select name="status"><option value="">all</option>"#,
    );
    for s in ["running", "succeeded", "failed", "interrupted"] {
        let _ = write!(
            b,
            r#"<option value="{s}"{}>{s}</option>"#,
            if Some(s) == status { " selected" } else { "" }
        );
    }
    b.push_str(r#"</select></label> <button type="submit">Show</button></form>"#);
    if runs.is_empty() {
        b.push_str(r#"<p class="empty">No runs match.</p>"#);
        return page("Runs", "runs", None, &b);
    }
    b.push_str(r#"<table class="runs"><thead><tr><th>Run</th><th>Workflow</th><th>State</th><th>Started</th><th>Took</th><th class="num">Jobs</th><th class="num">Executed</th><th class="num">Cached</th><th class="num">Failed</th><th class="num">Skipped</th></tr></thead><tbody>"#);
    for r in runs {
        let _ = write!(
            b,
            r#"<tr class="run" data-run="{id}"><td><a href="/runs/{id}"><code>{id}</code></a></td><td>{wf}</td><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num{}">{}</td><td class="num">{}</td></tr>"#,
            badge(r.status.as_str()),
            time(r.started_ms),
            r.duration_ms.map(dur).unwrap_or_else(|| "…".into()),
            r.jobs,
            r.counts.executed,
            r.counts.cached,
            if r.counts.failed > 0 { " bad" } else { "" },
            r.counts.failed,
            r.counts.skipped,
            id = escape(&r.id),
            wf = escape(&r.workflow),
        );
    }
    b.push_str("</tbody></table>");
    page("Runs", "runs", None, &b)
}

const LEGEND: &[(&str, &str)] = &[
    ("pending", "pending"),
    ("running", "running"),
    ("executed", "done"),
    ("cached", "cached"),
    ("failed", "failed"),
    ("skipped", "skipped"),
];

/// A run: its summary, parameters and inputs, and the DAG, which the page's
/// script keeps up to date while the run goes on.
pub fn run(v: &RunView, svg: &str) -> String {
    let r = &v.run;
    let mut b = String::new();
    let _ = write!(
        b,
        r#"<p class="crumbs"><a href="/">Runs</a> / <code>{id}</code></p><h1>Run <code>{id}</code> <span id="run-status">{}</span></h1>
<p class="meta">workflow <strong>{}</strong> (<code>{}</code>) · started {} · took <span id="run-took">{}</span> · {}</p>"#,
        badge(r.status.as_str()),
        escape(&r.workflow),
        escape(&r.workflow_path),
        time(r.started_ms),
        r.duration_ms.map(dur).unwrap_or_else(|| "…".into()),
        counts_line(r),
        id = escape(&r.id),
    );
    if let Some(e) = &r.error {
        let _ = write!(b, r#"<pre class="failure">{}</pre>"#, escape(e));
    }
    if !v.params.is_empty() || !v.inputs.is_empty() {
        b.push_str(r#"<div class="cols">"#);
        if !v.params.is_empty() {
            b.push_str(r#"<section><h2>Parameters</h2><table class="kv">"#);
            for (k, val) in &v.params {
                let _ = write!(
                    b,
                    "<tr><th>{}</th><td><code>{}</code></td></tr>",
                    escape(k),
                    escape(val)
                );
            }
            b.push_str("</table></section>");
        }
        if !v.inputs.is_empty() {
            b.push_str(r#"<section><h2>Inputs</h2><table class="kv">"#);
            for (k, val) in &v.inputs {
                value_rows(&mut b, k, val);
            }
            b.push_str("</table></section>");
        }
        b.push_str("</div>");
    }
    b.push_str(r#"<h2>Jobs</h2><p class="legend">"#);
    for (state, word) in LEGEND {
        let _ = write!(b, r#"<span class="badge s-{state}">{word}</span> "#);
    }
    b.push_str(r#"<span class="muted">Click a job for its page.</span></p>"#);
    let _ = write!(b, r#"<div class="dag-wrap" id="dag">{svg}</div>"#);
    let failed: Vec<&JobBrief> = v.jobs.iter().filter(|j| j.status == "failed").collect();
    if !failed.is_empty() {
        b.push_str(r#"<h2>Failed jobs</h2><ul class="failed">"#);
        for j in failed.iter().take(200) {
            let _ = write!(
                b,
                r#"<li><a href="{}">{}</a></li>"#,
                job_url(false, &r.id, &j.name),
                escape(&j.name)
            );
        }
        if failed.len() > 200 {
            let _ = write!(b, "<li>… and {} more</li>", failed.len() - 200);
        }
        b.push_str("</ul>");
    }
    page(&format!("run {}", r.id), "run", Some(&r.id), &b)
}

/// Table rows for a value: a blob's digest, size and download link, or one
/// row per element of a list.
fn value_rows(b: &mut String, name: &str, v: &ValueView) {
    match v {
        ValueView::Blob { digest, size, url } => {
            let link = url
                .as_ref()
                .map(|u| {
                    format!(
                        r#" <a class="dl" href="{}" download>download</a>"#,
                        escape(u)
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                b,
                r#"<tr><th>{}</th><td><code class="digest" title="{digest}">{}</code> <span class="muted">{}</span>{link}</td></tr>"#,
                escape(name),
                &digest[..digest.len().min(16)],
                bytes(*size),
            );
        }
        ValueView::List { items } => {
            if items.is_empty() {
                let _ = write!(
                    b,
                    r#"<tr><th>{}</th><td class="muted">an empty list</td></tr>"#,
                    escape(name)
                );
            }
            for (i, item) in items.iter().enumerate() {
                value_rows(b, &format!("{name}[{i}]"), item);
            }
        }
    }
}

fn named(b: &mut String, title: &str, id: &str, values: &[Named]) {
    let _ = write!(b, r#"<section id="{id}"><h2>{title}</h2>"#);
    if values.is_empty() {
        b.push_str(r#"<p class="muted">none</p>"#);
    } else {
        b.push_str(r#"<table class="kv">"#);
        for n in values {
            value_rows(b, &n.name, &n.value);
        }
        b.push_str("</table>");
    }
    b.push_str("</section>");
}

fn log_block(b: &mut String, title: &str, id: &str, log: &Option<LogView>) {
    let _ = write!(b, r#"<section class="log" id="{id}"><h3>{title}"#);
    match log {
        None => b.push_str(r#"</h3><p class="muted">not recorded</p>"#),
        Some(l) => {
            let _ = write!(
                b,
                r#" <span class="muted">{}</span> <a class="dl" href="{}">raw</a></h3>"#,
                bytes(l.size),
                escape(&l.url)
            );
            if l.text.is_empty() {
                b.push_str(r#"<p class="muted">empty</p>"#);
            } else {
                let _ = write!(b, "<pre>{}</pre>", escape(&l.text));
                if l.truncated {
                    let _ = write!(
                        b,
                        r#"<p class="muted">Cut at {}; the <a href="{}">raw log</a> has all of it.</p>"#,
                        bytes(super::data::LOG_SHOWN as u64),
                        escape(&l.url)
                    );
                }
            }
        }
    }
    b.push_str("</section>");
}

/// A job: why it ran, how it failed, what went in and came out, its logs,
/// metrics and labels.
pub fn job(v: &JobView) -> String {
    let j = &v.brief;
    let run = &v.run.id;
    let mut b = String::new();
    let _ = write!(
        b,
        r#"<p class="crumbs"><a href="/">Runs</a> / <a href="/runs/{r}"><code>{r}</code></a> ({}) / {}</p>
<h1>Job <code>{}</code> {}</h1><p class="meta">{}{}{}</p>"#,
        escape(&v.run.workflow),
        escape(&j.name),
        escape(&j.name),
        badge(&j.status),
        j.duration_ms
            .map(|d| format!("took {}", dur(d)))
            .unwrap_or_else(|| "not timed".into()),
        if v.cached {
            " · answered from the cache"
        } else {
            ""
        },
        if v.attempts.len() > 1 {
            format!(" · {} attempts", v.attempts.len())
        } else {
            String::new()
        },
        r = escape(run),
    );
    let _ = write!(
        b,
        r#"<section id="why"><h2>Why it ran</h2><p>{}</p>"#,
        escape(&v.why.answer)
    );
    if !v.why.differences.is_empty() {
        b.push_str("<ul>");
        for d in &v.why.differences {
            let _ = write!(b, "<li>{}</li>", escape(d));
        }
        b.push_str("</ul>");
    }
    b.push_str("</section>");
    if let Some(f) = &v.failure {
        let heading = if j.status == "skipped" {
            "Why it was skipped"
        } else {
            "Cause of failure"
        };
        let _ = write!(
            b,
            r#"<section id="failure"><h2>{heading}</h2>{}<pre class="failure">{}</pre></section>"#,
            f.kind
                .as_ref()
                .map(|k| format!(
                    r#"<p><span class="badge s-failed">{}</span></p>"#,
                    escape(k)
                ))
                .unwrap_or_default(),
            escape(&f.message)
        );
    }
    if v.attempts.len() > 1 || v.attempts.iter().any(|a| a.failure.is_some()) {
        b.push_str(r#"<section id="attempts"><h2>Attempts</h2><table class="list"><tr><th>#</th><th>State</th><th>Took</th><th>Failure</th></tr>"#);
        for a in &v.attempts {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                a.attempt,
                badge(&a.status),
                a.ended_ms
                    .map(|e| dur(e - a.started_ms))
                    .unwrap_or_default(),
                escape(
                    &a.failure
                        .as_ref()
                        .map(|f| format!("{}: {f}", a.failure_kind.as_deref().unwrap_or("failure")))
                        .unwrap_or_default()
                )
            );
        }
        b.push_str("</table></section>");
    }
    b.push_str(r#"<section id="args"><h2>Arguments</h2>"#);
    if v.call.is_none() && v.argv.is_empty() && v.args.is_empty() {
        b.push_str(r#"<p class="muted">none</p>"#);
    } else {
        b.push_str(r#"<table class="kv">"#);
        if let Some(c) = &v.call {
            let _ = write!(
                b,
                "<tr><th>call</th><td><code>{}</code></td></tr>",
                escape(c)
            );
        }
        if !v.argv.is_empty() {
            let argv: Vec<String> = v
                .argv
                .iter()
                .map(|a| format!("<code>{}</code>", escape(a)))
                .collect();
            let _ = write!(b, "<tr><th>argv</th><td>{}</td></tr>", argv.join(" "));
        }
        for (k, val) in &v.args {
            let _ = write!(
                b,
                "<tr><th>{}</th><td><code>{}</code></td></tr>",
                escape(k),
                escape(&val.to_string())
            );
        }
        b.push_str("</table>");
    }
    b.push_str("</section>");
    b.push_str(r#"<div class="cols">"#);
    named(&mut b, "Inputs", "inputs", &v.inputs);
    named(&mut b, "Outputs", "outputs", &v.outputs);
    b.push_str("</div>");
    if !v.secrets.is_empty() {
        b.push_str(r#"<section id="secrets"><h2>Secrets</h2><table class="kv">"#);
        for s in &v.secrets {
            let _ = write!(
                b,
                r#"<tr><th>{}</th><td class="muted">value hidden</td></tr>"#,
                escape(s)
            );
        }
        b.push_str("</table></section>");
    }
    b.push_str(r#"<section id="labels"><h2>Labels</h2>"#);
    if v.labels.is_empty() {
        b.push_str(r#"<p class="muted">none</p>"#);
    } else {
        b.push_str(r#"<table class="kv">"#);
        for (k, val) in &v.labels {
            let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(val));
        }
        b.push_str("</table>");
    }
    b.push_str("</section>");
    b.push_str(r#"<section id="metrics"><h2>Metrics</h2>"#);
    if v.metrics.is_empty() {
        b.push_str(r#"<p class="muted">none</p>"#);
    }
    for m in &v.metrics {
        let pts: Vec<(f64, f64)> = m
            .points
            .iter()
            .enumerate()
            .map(|(i, (step, val))| (step.map_or(i as f64, |s| s as f64), *val))
            .collect();
        let _ = write!(
            b,
            r#"<figure class="metric"><figcaption>{}</figcaption>{}<table class="list points"><tr><th>step</th><th>value</th></tr>"#,
            escape(&m.name),
            plot(&m.name, &pts)
        );
        for (step, val) in m.points.iter().take(50) {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td></tr>",
                step.map(|s| s.to_string()).unwrap_or_else(|| "–".into()),
                number(*val)
            );
        }
        b.push_str("</table></figure>");
    }
    b.push_str("</section>");
    b.push_str(r#"<section id="logs"><h2>Logs</h2>"#);
    if !v.logs.structured.is_empty() {
        b.push_str(
            r#"<section class="log" id="task-log"><h3>Task log</h3><table class="list tasklog">"#,
        );
        for l in &v.logs.structured {
            let _ = write!(
                b,
                r#"<tr class="lvl-{0}"><td><span class="lvl">{0}</span></td><td>{1}</td></tr>"#,
                escape(&l.level),
                escape(&l.message)
            );
        }
        b.push_str("</table></section>");
    }
    log_block(&mut b, "stdout", "stdout", &v.logs.stdout);
    log_block(&mut b, "stderr", "stderr", &v.logs.stderr);
    b.push_str("</section>");
    b.push_str(r#"<section id="details"><h2>Details</h2><table class="kv">"#);
    if !v.needs.is_empty() {
        let needs: Vec<String> = v
            .needs
            .iter()
            .map(|n| format!(r#"<a href="{}">{}</a>"#, job_url(false, run, n), escape(n)))
            .collect();
        let _ = write!(b, "<tr><th>needs</th><td>{}</td></tr>", needs.join(", "));
    }
    if let Some(k) = &v.cache_key {
        let _ = write!(
            b,
            r#"<tr><th>cache key</th><td><code class="digest">{}</code></td></tr>"#,
            escape(k)
        );
    }
    if let Some(c) = &v.component {
        let _ = write!(
            b,
            r#"<tr><th>component</th><td><code class="digest">{}</code></td></tr>"#,
            escape(c)
        );
    }
    if let Some(l) = &v.limits {
        let _ = write!(
            b,
            "<tr><th>limits</th><td>memory {}, timeout {}, output {}, log {}{}</td></tr>",
            bytes(l.memory),
            dur(l.timeout_ms as i64),
            bytes(l.output),
            bytes(l.log),
            l.fuel.map(|f| format!(", fuel {f}")).unwrap_or_default()
        );
    }
    let _ = write!(
        b,
        r#"<tr><th>JSON</th><td><a href="{}">{}</a></td></tr></table></section>"#,
        job_url(true, run, &j.name),
        escape(&job_url(true, run, &j.name))
    );
    page(&format!("{} · run {run}", j.name), "job", Some(run), &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_sizes_read_well() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_704_067_200_000), "2024-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000 + 1_000), "2000-02-29 00:00:01 UTC");
        assert_eq!(dur(209), "209ms");
        assert_eq!(dur(1_250), "1.2s");
        assert_eq!(dur(184_000), "3m04s");
        assert_eq!(bytes(372), "372 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
