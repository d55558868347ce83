//! `cairn config`: saved runtime configurations.

use super::args::ConfigCommand;
use super::print::*;
use super::*;
use crate::remote::config::{self, Config, LOCAL, mask};
use std::io::Write;

fn json_of(name: &str, c: &Config) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "remote": c.remote,
        "instance": c.instance,
        "exec": c.exec,
        "headers": c.headers.iter().map(|(k, v)| (k.clone(), mask(v))).collect::<std::collections::BTreeMap<_, _>>(),
        "headers_from_env": c.headers_from_env.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
    })
}

pub(super) fn config(cmd: ConfigCommand) -> Query {
    let io = |e: config::ConfigError| QueryError::Host(e.to_string());
    match cmd {
        ConfigCommand::Add {
            name,
            remote,
            instance,
            headers,
            headers_from_env,
            remote_exec,
        } => {
            if !remote.starts_with("grpc://") && !remote.starts_with("grpcs://") {
                return Err(QueryError::Usage(format!(
                    "--remote {remote}: expected grpc://HOST:PORT (or grpcs:// for TLS)"
                )));
            }
            let headers_from_env = headers_from_env
                .iter()
                .map(|h| match h.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => ("authorization".to_string(), h.clone()),
                })
                .collect();
            let c = Config {
                remote,
                instance,
                headers,
                headers_from_env,
                exec: remote_exec,
            };
            config::add(&name, c).map_err(|e| match e {
                config::ConfigError::BadName(..) => QueryError::Usage(e.to_string()),
                e => QueryError::Host(e.to_string()),
            })?;
            outln!(
                "saved configuration `{name}` in {}",
                config::path().display()
            );
            Ok(EXIT_OK)
        }
        ConfigCommand::List { json } => {
            let all = config::list().map_err(io)?;
            if json {
                let mut v =
                    vec![serde_json::json!({ "name": LOCAL, "remote": null, "exec": false })];
                v.extend(all.iter().map(|(n, c)| json_of(n, c)));
                print_json(&v);
            } else {
                outln!("{LOCAL:<16} this machine (the default)");
                for (n, c) in &all {
                    let how = if c.exec { "executes on" } else { "caches on" };
                    let instance = if c.instance.is_empty() {
                        String::new()
                    } else {
                        format!(" (instance {})", c.instance)
                    };
                    outln!("{n:<16} {how} {}{instance}", c.remote);
                }
            }
            Ok(EXIT_OK)
        }
        ConfigCommand::Show { name, json } => {
            if name == LOCAL {
                if json {
                    print_json(
                        &serde_json::json!({ "name": LOCAL, "remote": null, "exec": false }),
                    );
                } else {
                    outln!("{LOCAL}: everything on this machine; no server");
                }
                return Ok(EXIT_OK);
            }
            let all = config::list().map_err(io)?;
            let c = all.get(&name).ok_or_else(|| {
                QueryError::Usage(config::ConfigError::Unknown(name.clone()).to_string())
            })?;
            if json {
                print_json(&json_of(&name, c));
            } else {
                outln!("name      {name}");
                outln!("remote    {}", c.remote);
                outln!(
                    "instance  {}",
                    if c.instance.is_empty() {
                        "(default)"
                    } else {
                        &c.instance
                    }
                );
                outln!(
                    "executes  {}",
                    if c.exec {
                        "remotely"
                    } else {
                        "here (the cache is remote)"
                    }
                );
                for (k, v) in &c.headers {
                    outln!("header    {k}: {}", mask(v));
                }
                for (k, var) in &c.headers_from_env {
                    outln!("header    {k}: from ${var}");
                }
            }
            Ok(EXIT_OK)
        }
        ConfigCommand::Remove { name } => {
            if config::remove(&name).map_err(io)? {
                outln!("removed configuration `{name}`");
                Ok(EXIT_OK)
            } else {
                Err(QueryError::Usage(
                    config::ConfigError::Unknown(name).to_string(),
                ))
            }
        }
    }
}
