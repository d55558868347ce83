//! Typed tasks: a component's exported function is the task's interface.
//! This module reads that signature, spells WIT types for messages,
//! converts workflow (YAML) values to component values with range checks,
//! and encodes plain values canonically (JSON with sorted keys) so they can
//! be stored as blobs, keyed, and handed to later jobs.

use crate::workflow::diag::{Diagnostic, Span};
use crate::workflow::yaml::{Kind, Node};
use serde_json::{Map, Value as Json};
use std::sync::Arc;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Type, Val};

/// What a component is, as a task.
#[derive(Clone, Debug)]
pub enum TaskKind {
    /// A `wasi:cli/command`: argv in, files in `/in` and `/out`.
    Command,
    /// A typed task: one exported function (shared by every job that
    /// calls it: a wide run has thousands).
    Typed(Arc<Signature>),
    /// The component cannot be loaded (not a component, an import the host
    /// lacks, no usable export). `cairn check` reports it; `cairn run` lets
    /// that job fail alone, classified, while the others run.
    Unusable(String),
}

/// A typed task's exported function.
#[derive(Clone, Debug)]
pub struct Signature {
    /// The export's name.
    pub export: String,
    /// Parameters in order.
    pub params: Vec<(String, Type)>,
    /// The result type, if any.
    pub result: Option<Type>,
}

impl Signature {
    /// The outputs the result becomes: a record's fields, a tuple's items
    /// `0`, `1`, …, or a single value `out`; inside `result<T, E>`, T's.
    pub fn outputs(&self) -> Vec<(String, Type)> {
        let Some(mut ty) = self.result.clone() else {
            return Vec::new();
        };
        if let Type::Result(r) = &ty {
            match r.ok() {
                Some(ok) => ty = ok,
                None => return Vec::new(),
            }
        }
        match &ty {
            Type::Record(r) => r.fields().map(|f| (f.name.to_string(), f.ty)).collect(),
            Type::Tuple(t) => t
                .types()
                .enumerate()
                .map(|(i, t)| (i.to_string(), t))
                .collect(),
            _ => vec![("out".to_string(), ty)],
        }
    }

    /// `name: func(a: u32, …) -> T`, for messages and `cairn inspect`.
    pub fn describe(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(n, t)| format!("{n}: {}", describe(t)))
            .collect();
        let result = self
            .result
            .as_ref()
            .map(|t| format!(" -> {}", describe(t)))
            .unwrap_or_default();
        format!("{}: func({}){result}", self.export, params.join(", "))
    }
}

/// Names an export toolchains add that is never the task itself.
const TOOLCHAIN_EXPORTS: &[&str] = &["init", "cabi_realloc"];

/// Reads what kind of task a component is. `call` names the export when
/// there is more than one candidate.
pub fn task_kind(
    component: &Component,
    engine: &wasmtime::Engine,
    call: Option<&str>,
) -> Result<TaskKind, String> {
    let ty = component.component_type();
    let mut funcs: Vec<(String, ComponentFunc)> = Vec::new();
    let mut command = false;
    for (name, item) in ty.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(f) => funcs.push((name.to_string(), f)),
            ComponentItem::ComponentInstance(_) if name.starts_with("wasi:cli/run@0.2") => {
                command = true
            }
            _ => {}
        }
    }
    if command && call.is_none() {
        return Ok(TaskKind::Command);
    }
    let candidates: Vec<&(String, ComponentFunc)> = funcs
        .iter()
        .filter(|(n, _)| call.map_or(!TOOLCHAIN_EXPORTS.contains(&n.as_str()), |c| n == c))
        .collect();
    let (name, f) = match (candidates.as_slice(), call) {
        ([one], _) => *one,
        ([], Some(c)) => {
            let names: Vec<&str> = funcs.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "the component exports no function `{c}` (it exports: {})",
                list(&names)
            ));
        }
        ([], None) => {
            return Err(
                "the component exports neither wasi:cli/run nor a function: it is not a task"
                    .to_string(),
            );
        }
        (many, None) => {
            let names: Vec<&str> = many.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "the component exports several functions ({}); say which with `call:`",
                list(&names)
            ));
        }
        (_, Some(_)) => unreachable!("export names are unique"),
    };
    let mut results = f.results();
    let result = results.next();
    if results.next().is_some() {
        return Err(format!(
            "`{name}` returns several values; a task returns one (a record for several outputs)"
        ));
    }
    Ok(TaskKind::Typed(Arc::new(Signature {
        export: name.clone(),
        params: f.params().map(|(n, t)| (n.to_string(), t)).collect(),
        result,
    })))
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "nothing".to_string()
    } else {
        names.join(", ")
    }
}

/// True for `own<artifact>` and `borrow<artifact>`: values that come from
/// the store rather than from the workflow file.
pub fn is_artifact(ty: &Type) -> bool {
    matches!(ty, Type::Own(_) | Type::Borrow(_))
}

/// True when a value of this type holds an artifact anywhere inside.
pub fn holds_artifacts(ty: &Type) -> bool {
    match ty {
        Type::Own(_) | Type::Borrow(_) => true,
        Type::List(l) => holds_artifacts(&l.ty()),
        Type::Option(o) => holds_artifacts(&o.ty()),
        Type::Record(r) => r.fields().any(|f| holds_artifacts(&f.ty)),
        Type::Tuple(t) => t.types().any(|t| holds_artifacts(&t)),
        Type::Variant(v) => v
            .cases()
            .any(|c| c.ty.as_ref().is_some_and(holds_artifacts)),
        Type::Result(r) => {
            r.ok().is_some_and(|t| holds_artifacts(&t))
                || r.err().is_some_and(|t| holds_artifacts(&t))
        }
        _ => false,
    }
}

/// The WIT spelling of a type (`list<u32>`, `record { x: s32, y: s32 }`).
pub fn describe(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", describe(&l.ty())),
        Type::Record(r) => {
            let fields: Vec<String> = r
                .fields()
                .map(|f| format!("{}: {}", f.name, describe(&f.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Tuple(t) => format!(
            "tuple<{}>",
            t.types()
                .map(|t| describe(&t))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Variant(v) => {
            let cases: Vec<String> = v
                .cases()
                .map(|c| match &c.ty {
                    Some(t) => format!("{}({})", c.name, describe(t)),
                    None => c.name.to_string(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", describe(&o.ty())),
        Type::Result(r) => {
            let side = |t: Option<Type>| t.map_or("_".to_string(), |t| describe(&t));
            format!("result<{}, {}>", side(r.ok()), side(r.err()))
        }
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Own(_) => "artifact".into(),
        Type::Borrow(_) => "borrow<artifact>".into(),
        other => format!("{other:?}"),
    }
}

/// A conversion error: where, what was found, and the WIT type expected.
fn mismatch(span: Span, found: impl Into<String>, ty: &Type) -> Diagnostic {
    Diagnostic::at(span, found).expected(describe(ty))
}

/// Converts a workflow value to a component value of type `ty`, checking
/// ranges, names and shapes. Artifacts cannot be written literally.
pub fn from_yaml(node: &Node, ty: &Type) -> Result<Val, Diagnostic> {
    let span = node.span;
    let text = node.as_str();
    let plain = matches!(&node.kind, Kind::Scalar { plain: true, .. });
    match ty {
        Type::Bool => match text {
            Some("true") => Ok(Val::Bool(true)),
            Some("false") => Ok(Val::Bool(false)),
            _ => Err(mismatch(span, format!("found {}", shown(node)), ty)),
        },
        t if int_range(t).is_some() => {
            let s = text.ok_or_else(|| mismatch(span, format!("found {}", node.describe()), ty))?;
            let n = parse_int(s)
                .ok_or_else(|| mismatch(span, format!("`{s}` is not a whole number"), ty))?;
            int_val(t, n).ok_or_else(|| {
                let (lo, hi) = int_range(t).expect("an integer type");
                mismatch(span, format!("{n} is out of range ({lo}..={hi})"), ty)
            })
        }
        Type::Float32 | Type::Float64 => {
            let s = text.ok_or_else(|| mismatch(span, format!("found {}", node.describe()), ty))?;
            let f = parse_float(s)
                .ok_or_else(|| mismatch(span, format!("`{s}` is not a number"), ty))?;
            Ok(if matches!(ty, Type::Float32) {
                Val::Float32(f as f32)
            } else {
                Val::Float64(f)
            })
        }
        Type::Char => {
            let s = text.ok_or_else(|| mismatch(span, format!("found {}", node.describe()), ty))?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(Val::Char(c)),
                _ => Err(mismatch(
                    span,
                    format!("`{s}` is not a single character"),
                    ty,
                )),
            }
        }
        Type::String => match &node.kind {
            Kind::Scalar { text, .. } if !(plain && node.is_null()) => {
                Ok(Val::String(text.clone()))
            }
            _ => Err(mismatch(span, format!("found {}", node.describe()), ty)),
        },
        Type::List(l) => match &node.kind {
            Kind::Seq(items) => items
                .iter()
                .map(|i| from_yaml(i, &l.ty()))
                .collect::<Result<_, _>>()
                .map(Val::List),
            _ => Err(mismatch(span, format!("found {}", node.describe()), ty)),
        },
        Type::Tuple(t) => match &node.kind {
            Kind::Seq(items) if items.len() == t.types().len() => items
                .iter()
                .zip(t.types())
                .map(|(i, ty)| from_yaml(i, &ty))
                .collect::<Result<_, _>>()
                .map(Val::Tuple),
            Kind::Seq(items) => Err(mismatch(
                span,
                format!("a list of {} items", items.len()),
                ty,
            )),
            _ => Err(mismatch(span, format!("found {}", node.describe()), ty)),
        },
        Type::Record(r) => {
            let Kind::Map(entries) = &node.kind else {
                return Err(mismatch(span, format!("found {}", node.describe()), ty));
            };
            let names: Vec<&str> = r.fields().map(|f| f.name).collect();
            if let Some((k, _)) = entries
                .iter()
                .find(|(k, _)| !names.contains(&k.as_str().unwrap_or_default()))
            {
                let key = k.as_str().unwrap_or_default();
                return Err(Diagnostic::at(k.span, format!("unknown field `{key}`"))
                    .expected(describe(ty))
                    .suggest(key, names.iter().copied()));
            }
            let mut fields = Vec::new();
            for f in r.fields() {
                let value = entries
                    .iter()
                    .find(|(k, _)| k.as_str() == Some(f.name))
                    .map(|(_, v)| v);
                match (value, &f.ty) {
                    (Some(v), t) => fields.push((f.name.to_string(), from_yaml(v, t)?)),
                    (None, Type::Option(_)) => fields.push((f.name.to_string(), Val::Option(None))),
                    (None, t) => {
                        return Err(Diagnostic::at(span, format!("missing field `{}`", f.name))
                            .expected(format!(
                                "`{}: {}` in {}",
                                f.name,
                                describe(t),
                                describe(ty)
                            )));
                    }
                }
            }
            Ok(Val::Record(fields))
        }
        Type::Option(o) => {
            if node.is_null() {
                Ok(Val::Option(None))
            } else {
                Ok(Val::Option(Some(Box::new(from_yaml(node, &o.ty())?))))
            }
        }
        Type::Result(r) => {
            // `{ ok: v }` or `{ err: v }`; a bare value means ok.
            if let Kind::Map(entries) = &node.kind
                && let [(k, v)] = entries.as_slice()
                && let Some(side @ ("ok" | "err")) = k.as_str()
            {
                let t = if side == "ok" { r.ok() } else { r.err() };
                let inner = match t {
                    Some(t) => Some(Box::new(from_yaml(v, &t)?)),
                    None if v.is_null() => None,
                    None => return Err(mismatch(v.span, "a value where the type has none", ty)),
                };
                return Ok(Val::Result(if side == "ok" {
                    Ok(inner)
                } else {
                    Err(inner)
                }));
            }
            match r.ok() {
                Some(t) => Ok(Val::Result(Ok(Some(Box::new(from_yaml(node, &t)?))))),
                None if node.is_null() => Ok(Val::Result(Ok(None))),
                None => Err(mismatch(span, format!("found {}", node.describe()), ty)),
            }
        }
        Type::Enum(e) => {
            let names: Vec<&str> = e.names().collect();
            match text {
                Some(s) if names.contains(&s) => Ok(Val::Enum(s.to_string())),
                Some(s) => {
                    Err(mismatch(span, format!("`{s}` is not a case"), ty).suggest(s, names))
                }
                None => Err(mismatch(span, format!("found {}", node.describe()), ty)),
            }
        }
        Type::Flags(f) => {
            let names: Vec<&str> = f.names().collect();
            let Kind::Seq(items) = &node.kind else {
                return Err(mismatch(
                    span,
                    format!("found {}; flags are a list of names", node.describe()),
                    ty,
                ));
            };
            let mut set = Vec::new();
            for i in items {
                match i.as_str() {
                    Some(s) if names.contains(&s) => set.push(s.to_string()),
                    Some(s) => {
                        return Err(
                            mismatch(i.span, format!("`{s}` is not a flag"), ty).suggest(s, names)
                        );
                    }
                    None => return Err(mismatch(i.span, format!("found {}", i.describe()), ty)),
                }
            }
            Ok(Val::Flags(set))
        }
        Type::Variant(v) => {
            // `case` for a case without a payload, `{ case: payload }` otherwise.
            let names: Vec<&str> = v.cases().map(|c| c.name).collect();
            let (name, payload, name_span) = match &node.kind {
                Kind::Scalar { text, .. } => (text.as_str(), None, span),
                Kind::Map(entries) if entries.len() == 1 => (
                    entries[0].0.as_str().unwrap_or_default(),
                    Some(&entries[0].1),
                    entries[0].0.span,
                ),
                _ => return Err(mismatch(span, format!("found {}", node.describe()), ty)),
            };
            let Some(case) = v.cases().find(|c| c.name == name) else {
                return Err(
                    mismatch(name_span, format!("`{name}` is not a case"), ty).suggest(name, names)
                );
            };
            match (case.ty, payload) {
                (None, None) => Ok(Val::Variant(name.to_string(), None)),
                (Some(t), Some(p)) => Ok(Val::Variant(
                    name.to_string(),
                    Some(Box::new(from_yaml(p, &t)?)),
                )),
                (Some(t), None) => Err(mismatch(
                    span,
                    format!("case `{name}` without its {}", describe(&t)),
                    ty,
                )),
                (None, Some(p)) => Err(mismatch(
                    p.span,
                    format!("a payload for case `{name}`, which has none"),
                    ty,
                )),
            }
        }
        Type::Own(_) | Type::Borrow(_) => Err(mismatch(
            span,
            "a literal value where an artifact is expected",
            ty,
        )
        .help(
            "pass an artifact with a reference: ${{ inputs.NAME }} or ${{ jobs.JOB.outputs.NAME }}",
        )),
        other => Err(mismatch(
            span,
            format!("{other:?} values cannot be written in a workflow"),
            ty,
        )),
    }
}

/// The values of an integer type, or `None` for other types.
pub fn int_range(ty: &Type) -> Option<(i128, i128)> {
    Some(match ty {
        Type::U8 => (0, u8::MAX.into()),
        Type::U16 => (0, u16::MAX.into()),
        Type::U32 => (0, u32::MAX.into()),
        Type::U64 => (0, u64::MAX.into()),
        Type::S8 => (i8::MIN.into(), i8::MAX.into()),
        Type::S16 => (i16::MIN.into(), i16::MAX.into()),
        Type::S32 => (i32::MIN.into(), i32::MAX.into()),
        Type::S64 => (i64::MIN.into(), i64::MAX.into()),
        _ => return None,
    })
}

/// `n` as a value of integer type `ty`, if it is in range.
fn int_val(ty: &Type, n: i128) -> Option<Val> {
    Some(match ty {
        Type::U8 => Val::U8(n.try_into().ok()?),
        Type::U16 => Val::U16(n.try_into().ok()?),
        Type::U32 => Val::U32(n.try_into().ok()?),
        Type::U64 => Val::U64(n.try_into().ok()?),
        Type::S8 => Val::S8(n.try_into().ok()?),
        Type::S16 => Val::S16(n.try_into().ok()?),
        Type::S32 => Val::S32(n.try_into().ok()?),
        Type::S64 => Val::S64(n.try_into().ok()?),
        _ => return None,
    })
}

fn shown(node: &Node) -> String {
    node.as_str()
        .map_or_else(|| node.describe().to_string(), |s| format!("`{s}`"))
}

fn parse_int(s: &str) -> Option<i128> {
    let s = s.trim().replace('_', "");
    if let Some(hex) = s.strip_prefix("0x") {
        return i128::from_str_radix(hex, 16).ok();
    }
    s.parse::<i128>().ok()
}

fn parse_float(s: &str) -> Option<f64> {
    match s.trim() {
        ".nan" | ".NaN" | "nan" | "NaN" => Some(f64::NAN),
        ".inf" | "inf" | "+.inf" => Some(f64::INFINITY),
        "-.inf" | "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

/// The canonical JSON of a plain value: records and variants as objects
/// with sorted keys, floats as numbers (or "NaN", "inf", "-inf"), chars as
/// strings. Artifacts are not plain values.
pub fn to_json(v: &Val) -> Result<Json, String> {
    let float = |f: f64| {
        if f.is_nan() {
            Json::from("NaN")
        } else if f.is_infinite() {
            Json::from(if f > 0.0 { "inf" } else { "-inf" })
        } else {
            Json::from(f)
        }
    };
    let list = |items: &[Val]| {
        items
            .iter()
            .map(to_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array)
    };
    Ok(match v {
        Val::Bool(b) => Json::from(*b),
        Val::S8(n) => Json::from(*n),
        Val::U8(n) => Json::from(*n),
        Val::S16(n) => Json::from(*n),
        Val::U16(n) => Json::from(*n),
        Val::S32(n) => Json::from(*n),
        Val::U32(n) => Json::from(*n),
        Val::S64(n) => Json::from(*n),
        Val::U64(n) => Json::from(*n),
        Val::Float32(f) => float(f64::from(*f)),
        Val::Float64(f) => float(*f),
        Val::Char(c) => Json::from(c.to_string()),
        Val::String(s) => Json::from(s.as_str()),
        Val::List(items) | Val::Tuple(items) => list(items)?,
        Val::Record(fields) => {
            let mut m = Map::new();
            for (k, v) in fields {
                m.insert(k.clone(), to_json(v)?);
            }
            Json::Object(m)
        }
        Val::Variant(name, payload) => {
            let mut m = Map::new();
            m.insert(
                name.clone(),
                payload
                    .as_deref()
                    .map(to_json)
                    .transpose()?
                    .unwrap_or(Json::Null),
            );
            Json::Object(m)
        }
        Val::Enum(name) => Json::from(name.as_str()),
        Val::Option(o) => match o {
            None => Json::Null,
            Some(v) => Json::Array(vec![to_json(v)?]),
        },
        Val::Result(r) => {
            let (side, inner) = match r {
                Ok(v) => ("ok", v),
                Err(v) => ("err", v),
            };
            let mut m = Map::new();
            m.insert(
                side.to_string(),
                inner
                    .as_deref()
                    .map(to_json)
                    .transpose()?
                    .unwrap_or(Json::Null),
            );
            Json::Object(m)
        }
        Val::Flags(names) => {
            let mut names = names.clone();
            names.sort();
            Json::Array(names.into_iter().map(Json::from).collect())
        }
        other => return Err(format!("{other:?} is not a plain value")),
    })
}

/// Decodes canonical JSON back into a value of type `ty`.
pub fn from_json(j: &Json, ty: &Type) -> Result<Val, String> {
    let bad = || format!("{j} is not a {}", describe(ty));
    let int = |j: &Json| {
        j.as_i64()
            .map(i128::from)
            .or_else(|| j.as_u64().map(i128::from))
            .ok_or_else(bad)
    };
    let float = |j: &Json| match j {
        Json::String(s) => parse_float(s).ok_or_else(bad),
        _ => j.as_f64().ok_or_else(bad),
    };
    match ty {
        Type::Bool => j.as_bool().map(Val::Bool).ok_or_else(bad),
        t if int_range(t).is_some() => int_val(t, int(j)?).ok_or_else(bad),
        Type::Float32 => float(j).map(|f| Val::Float32(f as f32)),
        Type::Float64 => float(j).map(Val::Float64),
        Type::Char => j
            .as_str()
            .and_then(|s| s.chars().next())
            .map(Val::Char)
            .ok_or_else(bad),
        Type::String => j
            .as_str()
            .map(|s| Val::String(s.to_string()))
            .ok_or_else(bad),
        Type::List(l) => {
            let items = j.as_array().ok_or_else(bad)?;
            items
                .iter()
                .map(|i| from_json(i, &l.ty()))
                .collect::<Result<_, _>>()
                .map(Val::List)
        }
        Type::Tuple(t) => {
            let items = j
                .as_array()
                .filter(|a| a.len() == t.types().len())
                .ok_or_else(bad)?;
            items
                .iter()
                .zip(t.types())
                .map(|(i, t)| from_json(i, &t))
                .collect::<Result<_, _>>()
                .map(Val::Tuple)
        }
        Type::Record(r) => {
            let m = j.as_object().ok_or_else(bad)?;
            r.fields()
                .map(|f| {
                    Ok((
                        f.name.to_string(),
                        from_json(m.get(f.name).ok_or_else(bad)?, &f.ty)?,
                    ))
                })
                .collect::<Result<_, String>>()
                .map(Val::Record)
        }
        Type::Variant(v) => {
            let (name, payload) = j
                .as_object()
                .and_then(|m| m.iter().next())
                .ok_or_else(bad)?;
            let case = v.cases().find(|c| c.name == name).ok_or_else(bad)?;
            let payload = match case.ty {
                Some(t) => Some(Box::new(from_json(payload, &t)?)),
                None => None,
            };
            Ok(Val::Variant(name.clone(), payload))
        }
        Type::Enum(_) => j.as_str().map(|s| Val::Enum(s.to_string())).ok_or_else(bad),
        Type::Option(o) => match j {
            Json::Null => Ok(Val::Option(None)),
            Json::Array(a) if a.len() == 1 => {
                Ok(Val::Option(Some(Box::new(from_json(&a[0], &o.ty())?))))
            }
            _ => Err(bad()),
        },
        Type::Result(r) => {
            let (side, inner) = j
                .as_object()
                .and_then(|m| m.iter().next())
                .ok_or_else(bad)?;
            let t = match side.as_str() {
                "ok" => r.ok(),
                "err" => r.err(),
                _ => return Err(bad()),
            };
            let inner = match t {
                Some(t) => Some(Box::new(from_json(inner, &t)?)),
                None => None,
            };
            Ok(Val::Result(if side == "ok" {
                Ok(inner)
            } else {
                Err(inner)
            }))
        }
        Type::Flags(_) => {
            let items = j.as_array().ok_or_else(bad)?;
            items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
                .collect::<Result<_, _>>()
                .map(Val::Flags)
        }
        _ => Err(format!(
            "{} values cannot be passed between jobs",
            describe(ty)
        )),
    }
}
