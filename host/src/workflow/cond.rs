//! Job conditions: `if: ${{ params.mode == 'full' && jobs.scan.outputs.count > 0 }}`.
//! Comparisons, `&&`, `||`, `!`, parentheses and literals over parameters,
//! matrix values, typed outputs of earlier jobs, and how an earlier job
//! ended: `jobs.a.result` (`'success'`, `'failure'` or `'skipped'`),
//! `jobs.a.cause` (a failure's cause by its stable name, [`CAUSES`]; `''`
//! unless it failed) and `jobs.a.exit_code` (0 on success, the code its
//! program exited with, -1 when it ended without one). A job whose
//! condition reads only how `a` ended waits for `a` to end, whatever its
//! state, so it can handle a failure. Pure: parsed with the workflow, typed
//! once signatures are known, evaluated when the job is ready.

use crate::workflow::diag::{Diagnostic, Span};
use serde_json::Value as Json;

/// A condition expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal (after planning, params and matrix values are literals too).
    Lit(Json, Span),
    /// `params.NAME`
    Param(String, Span),
    /// `matrix.KEY`
    Matrix(String, Span),
    /// `jobs.JOB.outputs.NAME`
    Output {
        /// The producing job (its key in the file).
        job: String,
        /// The output.
        output: String,
        /// Where it was written.
        span: Span,
    },
    /// `jobs.JOB.result`, `jobs.JOB.cause` or `jobs.JOB.exit_code`.
    Status {
        /// The job (its key in the file).
        job: String,
        /// What of its end.
        field: Field,
        /// Where it was written.
        span: Span,
    },
    /// `!e`
    Not(Box<Expr>),
    /// `a && b`
    And(Box<Expr>, Box<Expr>),
    /// `a || b`
    Or(Box<Expr>, Box<Expr>),
    /// `a OP b`
    Cmp(Op, Box<Expr>, Box<Expr>),
}

/// What a condition reads of how a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `result`: `'success'` (executed or cached), `'failure'` or
    /// `'skipped'` (for whatever reason, its own condition included).
    Result,
    /// `cause`: the failure's cause ([`CAUSES`]), `''` unless it failed.
    Cause,
    /// `exit_code`: 0 on success, the exit code of an `exit` failure, -1
    /// otherwise.
    ExitCode,
}

impl Field {
    /// The name after `jobs.JOB.`.
    pub fn name(self) -> &'static str {
        match self {
            Field::Result => "result",
            Field::Cause => "cause",
            Field::ExitCode => "exit_code",
        }
    }
}

/// The values of `jobs.a.result`.
pub const RESULTS: &[&str] = &["success", "failure", "skipped"];

/// The values of `jobs.a.cause` for a failed job: the stable names of
/// failure kinds (`FailureKind::as_str`, kept equal by a test there).
pub const CAUSES: &[&str] = &[
    "exit",
    "timeout",
    "out_of_memory",
    "stack_overflow",
    "out_of_fuel",
    "output_limit",
    "unreachable",
    "memory_out_of_bounds",
    "divide_by_zero",
    "integer_overflow",
    "bad_conversion",
    "table_out_of_bounds",
    "null_call",
    "bad_signature",
    "misaligned",
    "trap",
    "guest_error",
    "missing_output",
    "bad_output",
    "instantiation",
    "input",
    "host",
];

/// What a condition reads when it is checked or evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read<'a> {
    /// `jobs.JOB.outputs.NAME`: (job, output).
    Output(&'a str, &'a str),
    /// `jobs.JOB.FIELD`.
    Status(&'a str, Field),
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// What a value is, for type checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A number.
    Number,
    /// A string.
    String,
    /// A boolean.
    Bool,
}

impl Kind {
    fn of(j: &Json) -> Option<Kind> {
        match j {
            Json::Number(_) => Some(Kind::Number),
            Json::String(_) => Some(Kind::String),
            Json::Bool(_) => Some(Kind::Bool),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Bool => "a boolean",
        }
    }
}

const FORMS: &str = "a comparison such as `params.mode == 'full'`, `jobs.a.outputs.n > 0` or `jobs.a.cause == 'timeout'`, joined with && || ! and ( )";

/// Parses a condition; `text` may or may not be wrapped in `${{ }}`.
pub fn parse(text: &str, span: Span) -> Result<Expr, Diagnostic> {
    let (body, offset) = match text
        .trim()
        .strip_prefix("${{")
        .and_then(|t| t.strip_suffix("}}"))
    {
        Some(inner) => (inner, text.find("${{").unwrap_or(0) + 3),
        None => (text, 0),
    };
    let mut p = P {
        s: body,
        i: 0,
        base: span,
        offset,
    };
    let e = p.or()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.err(format!("unexpected `{}`", &p.s[p.i..])));
    }
    known_words(&e)?;
    Ok(e)
}

/// A string compared with `jobs.a.result` or `jobs.a.cause` must be one
/// of its values: a misspelt cause would make a condition silently false.
fn known_words(e: &Expr) -> Result<(), Diagnostic> {
    let mut bad = Ok(());
    e.walk(&mut |e| {
        let Expr::Cmp(_, a, b) = e else { return };
        for (x, y) in [(a, b), (b, a)] {
            let (Expr::Status { field, .. }, Expr::Lit(Json::String(word), span)) = (&**x, &**y)
            else {
                continue;
            };
            let allowed: &[&str] = match field {
                Field::Result => RESULTS,
                Field::Cause => CAUSES,
                Field::ExitCode => continue,
            };
            // `''` is the cause of a job that did not fail.
            let empty_ok = *field == Field::Cause && word.is_empty();
            if !allowed.contains(&word.as_str()) && !empty_ok && bad.is_ok() {
                bad = Err(Diagnostic::at(
                    *span,
                    format!("`{word}` is not a {} a job can have", field.name()),
                )
                .expected(format!("one of: {}", allowed.join(", ")))
                .suggest(word, allowed.iter().copied()));
            }
        }
    });
    bad
}

struct P<'a> {
    s: &'a str,
    i: usize,
    base: Span,
    offset: usize,
}

impl P<'_> {
    fn span(&self, at: usize, len: usize) -> Span {
        self.base
            .slice(self.offset + self.s[..at].chars().count(), len.max(1))
    }

    fn err(&self, msg: String) -> Diagnostic {
        Diagnostic::at(self.span(self.i, 1), msg).expected(FORMS)
    }

    fn ws(&mut self) {
        while self.s[self.i..].starts_with(char::is_whitespace) {
            self.i += self.s[self.i..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, Diagnostic> {
        let mut e = self.and()?;
        while self.eat("||") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, Diagnostic> {
        let mut e = self.not()?;
        while self.eat("&&") {
            e = Expr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, Diagnostic> {
        self.ws();
        if self.s[self.i..].starts_with('!') && !self.s[self.i..].starts_with("!=") {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, Diagnostic> {
        let lhs = self.atom()?;
        for (t, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.eat(t) {
                return Ok(Expr::Cmp(op, Box::new(lhs), Box::new(self.atom()?)));
            }
        }
        Ok(lhs)
    }

    fn atom(&mut self) -> Result<Expr, Diagnostic> {
        self.ws();
        let start = self.i;
        let rest = &self.s[self.i..];
        if self.eat("(") {
            let e = self.or()?;
            if !self.eat(")") {
                return Err(self.err("missing `)`".into()));
            }
            return Ok(e);
        }
        if let Some(q @ ('\'' | '"')) = rest.chars().next() {
            let Some(end) = rest[1..].find(q) else {
                return Err(self.err("unclosed string".into()));
            };
            self.i += end + 2;
            return Ok(Expr::Lit(
                Json::from(&rest[1..end + 1]),
                self.span(start, end + 2),
            ));
        }
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
            .collect();
        if word.is_empty() {
            return Err(self.err(format!("expected a value, found `{rest}`")));
        }
        self.i += word.len();
        let span = self.span(start, word.len());
        if let Ok(n) = word.parse::<f64>() {
            return Ok(Expr::Lit(Json::from(n), span));
        }
        let parts: Vec<&str> = word.split('.').collect();
        Ok(match parts.as_slice() {
            ["true"] => Expr::Lit(Json::Bool(true), span),
            ["false"] => Expr::Lit(Json::Bool(false), span),
            ["params", n] => Expr::Param(n.to_string(), span),
            ["matrix", k] => Expr::Matrix(k.to_string(), span),
            ["jobs", j, "outputs", o] => Expr::Output {
                job: j.to_string(),
                output: o.to_string(),
                span,
            },
            ["jobs", j, f @ ("result" | "cause" | "exit_code")] => Expr::Status {
                job: j.to_string(),
                field: match *f {
                    "result" => Field::Result,
                    "cause" => Field::Cause,
                    _ => Field::ExitCode,
                },
                span,
            },
            _ => {
                return Err(Diagnostic::at(span, format!("unknown value `{word}`")).expected(FORMS));
            }
        })
    }
}

/// A param or matrix value as a literal: a number or boolean if it reads as
/// one, else a string.
pub fn literal(text: &str) -> Json {
    match text {
        "true" => Json::Bool(true),
        "false" => Json::Bool(false),
        t => t
            .parse::<f64>()
            .map(Json::from)
            .unwrap_or_else(|_| Json::from(t)),
    }
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// The condition as it would be written, after substitution: `cairn plan`
/// shows why a job is skipped (`'fast' == 'full'`), with the parentheses
/// the parser needs and no others.
impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // How tightly each form binds, as the parser reads it.
        let binds = |e: &Expr| -> u8 {
            match e {
                Expr::Or(..) => 1,
                Expr::And(..) => 2,
                Expr::Not(..) => 3,
                Expr::Cmp(..) => 4,
                _ => 5,
            }
        };
        let operand = |f: &mut std::fmt::Formatter<'_>, e: &Expr, min: u8| {
            if binds(e) < min {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        };
        match self {
            Expr::Lit(Json::String(s), _) => write!(f, "'{s}'"),
            // Numbers are parsed as floats; 3, not 3.0, is what was written.
            Expr::Lit(Json::Number(n), _)
                if n.as_f64()
                    .is_some_and(|x| x.fract() == 0.0 && x.abs() < 1e15) =>
            {
                write!(f, "{}", n.as_f64().unwrap_or_default() as i64)
            }
            Expr::Lit(j, _) => write!(f, "{j}"),
            Expr::Param(n, _) => write!(f, "params.{n}"),
            Expr::Matrix(k, _) => write!(f, "matrix.{k}"),
            Expr::Output { job, output, .. } => write!(f, "jobs.{job}.outputs.{output}"),
            Expr::Status { job, field, .. } => write!(f, "jobs.{job}.{}", field.name()),
            Expr::Not(e) => {
                f.write_str("!")?;
                operand(f, e, 5)
            }
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(_, a, b) => {
                // A comparison's operands are atoms; && and || take
                // anything that binds at least as tightly as themselves.
                let (op, min) = match self {
                    Expr::And(..) => ("&&", 2),
                    Expr::Or(..) => ("||", 1),
                    Expr::Cmp(op, ..) => (op.symbol(), 5),
                    _ => unreachable!("matched above"),
                };
                operand(f, a, min)?;
                write!(f, " {op} ")?;
                operand(f, b, min)
            }
        }
    }
}

impl Expr {
    /// Every output the condition reads: (job, output, span).
    pub fn outputs(&self) -> Vec<(&str, &str, Span)> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Output { job, output, span } = e {
                out.push((job.as_str(), output.as_str(), *span));
            }
        });
        out
    }

    /// Every job whose end the condition reads: (job, field, span).
    pub fn statuses(&self) -> Vec<(&str, Field, Span)> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Status { job, field, span } = e {
                out.push((job.as_str(), *field, *span));
            }
        });
        out
    }

    /// Every job the condition reads anything of: (job, span).
    pub fn jobs(&self) -> Vec<(&str, Span)> {
        let mut out: Vec<(&str, Span)> =
            self.outputs().into_iter().map(|(j, _, s)| (j, s)).collect();
        out.extend(self.statuses().into_iter().map(|(j, _, s)| (j, s)));
        out
    }

    fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Not(e) => e.walk(f),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(_, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            _ => {}
        }
    }

    /// Replaces params and matrix values with literals.
    pub fn substitute(
        &self,
        param: &dyn Fn(&str) -> Option<String>,
        matrix: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Expr, Diagnostic> {
        let sub = |e: &Expr| e.substitute(param, matrix).map(Box::new);
        Ok(match self {
            Expr::Param(n, s) => Expr::Lit(
                literal(&param(n).ok_or_else(|| {
                    Diagnostic::at(*s, format!("no parameter named `{n}`"))
                        .expected("a name declared under `params:`")
                })?),
                *s,
            ),
            Expr::Matrix(k, s) => Expr::Lit(
                literal(&matrix(k).ok_or_else(|| {
                    Diagnostic::at(*s, format!("no matrix key `{k}`"))
                        .expected("a key of this job's matrix")
                })?),
                *s,
            ),
            Expr::Not(e) => Expr::Not(sub(e)?),
            Expr::And(a, b) => Expr::And(sub(a)?, sub(b)?),
            Expr::Or(a, b) => Expr::Or(sub(a)?, sub(b)?),
            Expr::Cmp(op, a, b) => Expr::Cmp(*op, sub(a)?, sub(b)?),
            other => other.clone(),
        })
    }

    /// Checks types, given the kind of each output the condition reads
    /// (how a job ended has a kind of its own).
    pub fn check(
        &self,
        output: &dyn Fn(&str, &str, Span) -> Result<Kind, Diagnostic>,
    ) -> Result<Kind, Diagnostic> {
        let boolean = |e: &Expr| -> Result<(), Diagnostic> {
            match e.check(output)? {
                Kind::Bool => Ok(()),
                k => Err(Diagnostic::at(e.span(), format!("this is {}", k.name()))
                    .expected("a boolean (a comparison, true or false)")),
            }
        };
        match self {
            Expr::Lit(j, s) => Kind::of(j)
                .ok_or_else(|| Diagnostic::at(*s, "not a comparable value").expected(FORMS)),
            Expr::Output {
                job,
                output: o,
                span,
            } => output(job, o, *span),
            Expr::Status {
                field: Field::ExitCode,
                ..
            } => Ok(Kind::Number),
            Expr::Status { .. } => Ok(Kind::String),
            Expr::Param(..) | Expr::Matrix(..) => unreachable!("substituted before checking"),
            Expr::Not(e) => boolean(e).map(|()| Kind::Bool),
            Expr::And(a, b) | Expr::Or(a, b) => {
                boolean(a)?;
                boolean(b).map(|()| Kind::Bool)
            }
            Expr::Cmp(op, a, b) => {
                let (ka, kb) = (a.check(output)?, b.check(output)?);
                if ka != kb {
                    return Err(Diagnostic::at(
                        b.span(),
                        format!("comparing {} with {}", ka.name(), kb.name()),
                    )
                    .expected(format!("{} like the left side", ka.name())));
                }
                if ka == Kind::Bool && !matches!(op, Op::Eq | Op::Ne) {
                    return Err(Diagnostic::at(a.span(), "booleans are ordered by nothing")
                        .expected("== or != between booleans"));
                }
                Ok(Kind::Bool)
            }
        }
    }

    /// Where the expression starts.
    pub fn span(&self) -> Span {
        match self {
            Expr::Lit(_, s) | Expr::Param(_, s) | Expr::Matrix(_, s) => *s,
            Expr::Output { span, .. } | Expr::Status { span, .. } => *span,
            Expr::Not(e) => e.span(),
            Expr::And(a, _) | Expr::Or(a, _) | Expr::Cmp(_, a, _) => a.span(),
        }
    }

    /// Evaluates, given each output's value (canonical JSON) and how each
    /// job it reads ended.
    pub fn eval(&self, output: &dyn Fn(Read<'_>) -> Result<Json, String>) -> Result<bool, String> {
        Ok(match self.value(output)? {
            Json::Bool(b) => b,
            other => return Err(format!("the condition gave {other}, not a boolean")),
        })
    }

    fn value(&self, output: &dyn Fn(Read<'_>) -> Result<Json, String>) -> Result<Json, String> {
        let b = |e: &Expr| e.eval(output);
        Ok(match self {
            Expr::Lit(j, _) => j.clone(),
            Expr::Output { job, output: o, .. } => output(Read::Output(job, o))?,
            Expr::Status { job, field, .. } => output(Read::Status(job, *field))?,
            Expr::Param(..) | Expr::Matrix(..) => unreachable!("substituted before evaluating"),
            Expr::Not(e) => Json::Bool(!b(e)?),
            Expr::And(x, y) => Json::Bool(b(x)? && b(y)?),
            Expr::Or(x, y) => Json::Bool(b(x)? || b(y)?),
            Expr::Cmp(op, x, y) => {
                let (x, y) = (x.value(output)?, y.value(output)?);
                let ord = match (&x, &y) {
                    (Json::Number(a), Json::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
                    (Json::String(a), Json::String(b)) => Some(a.cmp(b)),
                    (Json::Bool(a), Json::Bool(b)) => Some(a.cmp(b)),
                    _ => None,
                };
                let Some(ord) = ord else {
                    return Err(format!("cannot compare {x} with {y}"));
                };
                use std::cmp::Ordering::*;
                Json::Bool(match op {
                    Op::Eq => ord == Equal,
                    Op::Ne => ord != Equal,
                    Op::Lt => ord == Less,
                    Op::Le => ord != Greater,
                    Op::Gt => ord == Greater,
                    Op::Ge => ord != Less,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, params: &[(&str, &str)]) -> Result<bool, String> {
        let e = parse(text, Span::default()).map_err(|d| d.message)?;
        let e = e
            .substitute(
                &|n| {
                    params
                        .iter()
                        .find(|(k, _)| *k == n)
                        .map(|(_, v)| v.to_string())
                },
                &|_| None,
            )
            .map_err(|d| d.message)?;
        e.check(&|_, _, _| Ok(Kind::Number))
            .map_err(|d| d.message)?;
        e.eval(&|r| {
            Ok(match r {
                Read::Output(_, o) => Json::from(if o == "n" { 3 } else { 0 }),
                Read::Status(_, Field::Cause) => Json::from("timeout"),
                Read::Status(_, Field::Result) => Json::from("failure"),
                Read::Status(_, Field::ExitCode) => Json::from(-1),
            })
        })
    }

    #[test]
    fn a_condition_prints_as_it_parses() {
        for text in [
            "params.mode == 'full' && jobs.a.outputs.n > 3",
            "!(jobs.a.result == 'failure') || (matrix.os != 'linux' && true)",
            "(1 < 2) == false",
        ] {
            let printed = parse(text, Span::default()).unwrap().to_string();
            assert_eq!(
                printed.replace(['(', ')'], ""),
                text.replace(['(', ')'], "")
            );
            let again = parse(&printed, Span::default()).unwrap().to_string();
            assert_eq!(again, printed, "printing is stable");
        }
    }

    #[test]
    fn how_a_job_ended_is_a_value() {
        assert_eq!(eval("jobs.a.cause == 'timeout'", &[]), Ok(true));
        assert_eq!(
            eval("jobs.a.result != 'success' && jobs.a.exit_code < 0", &[]),
            Ok(true)
        );
        assert_eq!(eval("jobs.a.cause == ''", &[]), Ok(false));
        let e = eval("jobs.a.cause == 'timout'", &[]).unwrap_err();
        assert_eq!(e, "`timout` is not a cause a job can have");
        let e = eval("'succes' == jobs.a.result", &[]).unwrap_err();
        assert_eq!(e, "`succes` is not a result a job can have");
        assert_eq!(
            eval("jobs.a.exit_code == 'x'", &[]),
            Err("comparing a number with a string".into())
        );
    }

    #[test]
    fn comparisons_and_logic() {
        assert_eq!(
            eval("${{ params.mode == 'full' }}", &[("mode", "full")]),
            Ok(true)
        );
        assert_eq!(
            eval(
                "params.mode != \"full\" || params.n >= 2",
                &[("mode", "full"), ("n", "2")]
            ),
            Ok(true)
        );
        assert_eq!(
            eval("!(params.n < 2) && jobs.a.outputs.n > 2.5", &[("n", "2")]),
            Ok(true)
        );
        assert_eq!(eval("jobs.a.outputs.z == 0 && false", &[]), Ok(false));
        assert_eq!(eval("params.flag", &[("flag", "true")]), Ok(true));
    }

    #[test]
    fn type_errors_and_syntax_errors() {
        assert_eq!(
            eval("params.mode == 3", &[("mode", "full")]),
            Err("comparing a string with a number".into())
        );
        assert_eq!(
            eval("params.n && true", &[("n", "1")]),
            Err("this is a number".into())
        );
        assert_eq!(
            eval("params.n ==", &[("n", "1")]).unwrap_err(),
            "expected a value, found ``"
        );
        assert_eq!(
            eval("params.x > 1", &[]),
            Err("no parameter named `x`".into())
        );
        assert!(
            eval("(params.n > 1", &[("n", "1")])
                .unwrap_err()
                .contains("missing `)`")
        );
    }
}
