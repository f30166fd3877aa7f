//! Settings written in TOML (a manifest's `[handler.NAME]` tables, a scenario file's
//! `[handler]` table), read through the [settings table](super::settings) with the line
//! each value came from, so that a problem is reported as `FILE:LINE: KEY: what is
//! wrong`.

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::HandlerConfig;
use super::settings::{self, Value};

/// A problem in a file, located.
#[derive(Debug, Clone)]
pub struct LocatedError {
    pub file: String,
    /// 0: the file as a whole (it cannot be read).
    pub line: usize,
    /// `handler.NAME.KEY`, or what the problem is about.
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for LocatedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.key, self.message
            )
        }
    }
}

impl std::error::Error for LocatedError {}

/// A TOML file's text, for locating what is read from it.
pub struct Document<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl<'a> Document<'a> {
    /// Parses the text; a syntax error is located with the key `syntax`.
    pub fn parse(&self) -> Result<DeTable<'a>, LocatedError> {
        DeTable::parse(self.text)
            .map(Spanned::into_inner)
            .map_err(|e| {
                let offset = e.span().map_or(0, |s| s.start);
                self.error(offset, "syntax", e.message().trim().to_string())
            })
    }

    /// The line (from 1) of byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.text.as_bytes()[..offset.min(self.text.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// An error at byte `offset`.
    pub fn error(&self, offset: usize, key: &str, message: impl Into<String>) -> LocatedError {
        LocatedError {
            file: self.file.to_string(),
            line: self.line(offset),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Reads the settings in `table` (whose keys are named `PREFIX.KEY` in errors) into
    /// `config` (the caller validates the result). `extra_keys` are the other keys the
    /// table may have; each is handed to `extra`. Returns the line of each key found.
    pub fn read_settings(
        &self,
        prefix: &str,
        table: &DeTable<'_>,
        config: &mut HandlerConfig,
        extra_keys: &[&str],
        mut extra: impl FnMut(&str, &Value<'_>) -> Result<(), String>,
    ) -> Result<BTreeMap<String, usize>, LocatedError> {
        let mut lines = BTreeMap::new();
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            let full = format!("{prefix}.{name}");
            let at = value.span().start;
            lines.insert(name.to_string(), self.line(at));
            let read = value_of(value.get_ref());
            let result = match (settings::find(name), read) {
                (_, Err(e)) => Err(e),
                (Some(setting), Ok(v)) => setting.set(config, &v),
                (None, Ok(v)) if extra_keys.contains(&name) => extra(name, &v),
                (None, Ok(_)) => {
                    let known: Vec<&str> = extra_keys
                        .iter()
                        .copied()
                        .chain(settings::SETTINGS.iter().map(|s| s.name))
                        .collect();
                    let hint = settings::suggest(name, known.iter().copied())
                        .map(|k| format!(" (did you mean `{k}`?)"))
                        .unwrap_or_default();
                    return Err(self.error(
                        key.span().start,
                        &full,
                        format!(
                            "unknown key{hint}; a handler's keys are: {}",
                            known.join(", ")
                        ),
                    ));
                }
            };
            result.map_err(|message| self.error(at, &full, message))?;
        }
        Ok(lines)
    }
}

/// A TOML value as a setting reads it.
fn value_of<'v>(value: &'v DeValue<'_>) -> Result<Value<'v>, String> {
    Ok(match value {
        DeValue::String(s) => Value::Text(s),
        DeValue::Integer(n) => Value::Integer(integer(n)?),
        DeValue::Float(f) => Value::Float(
            f.as_str()
                .parse()
                .map_err(|_| format!("{f} is out of range"))?,
        ),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Array(items) => Value::List(
            items
                .iter()
                .map(|item| value_of(item.get_ref()))
                .collect::<Result<_, _>>()?,
        ),
        other => Value::Other(other.type_str()),
    })
}

/// A TOML integer (any radix) as an `i64`.
fn integer(n: &toml::de::DeInteger<'_>) -> Result<i64, String> {
    i64::from_str_radix(n.as_str(), n.radix()).map_err(|_| format!("{n} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<HandlerConfig, LocatedError> {
        let doc = Document {
            file: "f.toml",
            text,
        };
        let table = doc.parse()?;
        let mut config = HandlerConfig::default();
        doc.read_settings(
            "handler",
            &table,
            &mut config,
            &["component"],
            |_, _| Ok(()),
        )?;
        Ok(config)
    }

    #[test]
    fn toml_values_read_like_flags() {
        let c = read(
            "tcp = [\"127.0.0.1:0\", \"[::1]:0\"]\nshards = 2\nmax-memory = 1_048_576\n\
             event-timeout = 0.5\ngrace = \"2s\"\nmax-connections = 0x10\nallow-dns = true\n\
             args = \"one\"\n",
        )
        .unwrap();
        assert_eq!(c.tcp.len(), 2);
        assert_eq!(c.shards, 2);
        assert_eq!(c.max_memory, 1 << 20);
        assert_eq!(c.event_timeout, std::time::Duration::from_millis(500));
        assert_eq!(c.grace, std::time::Duration::from_secs(2));
        assert_eq!(c.max_connections, Some(16));
        assert!(c.allow_dns);
        assert_eq!(c.args, ["one"]);
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let e = read("shards = 1\nmax-memory = -5\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.toml:2: handler.max-memory: must not be negative"
        );
        let e = read("\n\nmaxMemory = 5\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (3, "handler.maxMemory"));
        assert!(e.message.starts_with("unknown key (did you mean `max-memory`?); a handler's keys are: component, tcp, udp"), "{e}");
        let e = read("grace = {}\n").unwrap_err();
        assert!(e.message.contains("found table"), "{e}");
        let e = read("tcp = [1]\n").unwrap_err();
        assert!(e.message.contains("found integer"), "{e}");
    }
}
