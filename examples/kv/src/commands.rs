//! The commands `kv` serves, with Redis 7's semantics and its exact replies: the same
//! arity and syntax checks in the same order, the same error texts, the same integer
//! parsing and expiry-time validation. The command table also answers `COMMAND`, for
//! clients that ask the server what it supports.

use crate::memory;
use crate::resp::{self, Args, string2ll};
use crate::store::{Oom, Store, Ttl, try_copy};

pub use crate::resp::OOM;

const SYNTAX: &[u8] = b"ERR syntax error";
const NOT_INTEGER: &[u8] = b"ERR value is not an integer or out of range";

/// The database and the time of the event being served.
#[derive(Default)]
pub struct Db {
    pub store: Store,
    /// Redis's `DEBUG SET-ACTIVE-EXPIRE`: whether the expiry timer removes keys (on by
    /// default; off, keys expire only when accessed).
    pub active_expire_off: bool,
    /// Now, in milliseconds on the store's clock.
    pub now: u64,
}

/// What the connection does after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `QUIT`: close once the reply is sent.
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Get,
    Set,
    Incr,
    Decr,
    IncrBy,
    DecrBy,
    MGet,
    MSet,
    Del,
    Exists,
    Expire,
    PExpire,
    Ttl,
    PTtl,
    Ping,
    Echo,
    DbSize,
    FlushAll,
    Quit,
    Command,
    Config,
    Debug,
}

/// A command as `COMMAND INFO` and `COMMAND DOCS` describe it.
struct Spec {
    cmd: Cmd,
    name: &'static str,
    /// Redis's arity: `n` exactly n arguments (the name included), `-n` at least n.
    arity: i32,
    flags: &'static [&'static str],
    /// First key, last key, step between keys.
    keys: (i32, i32, i32),
    acl: &'static [&'static str],
    group: &'static str,
    summary: &'static str,
    subcommands: &'static [Sub],
}

/// A subcommand of a container command (`COMMAND COUNT`, `CONFIG GET`).
struct Sub {
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    acl: &'static [&'static str],
    summary: &'static str,
}

const READ_FAST: &[&str] = &["readonly", "fast"];
const WRITE_GROW: &[&str] = &["write", "denyoom"];
const WRITE_GROW_FAST: &[&str] = &["write", "denyoom", "fast"];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];

/// Hot commands first: the lookup is a scan.
static COMMANDS: &[Spec] = &[
    Spec {
        cmd: Cmd::Get,
        name: "get",
        arity: 2,
        flags: READ_FAST,
        keys: (1, 1, 1),
        acl: &["@read", "@string", "@fast"],
        group: "string",
        summary: "Get the value of a key",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::Set,
        name: "set",
        arity: -3,
        flags: WRITE_GROW,
        keys: (1, 1, 1),
        acl: &["@write", "@string", "@slow"],
        group: "string",
        summary: "Set the string value of a key (options: NX, XX, GET, EX, PX, KEEPTTL)",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::Incr,
        name: "incr",
        arity: 2,
        flags: WRITE_GROW_FAST,
        keys: (1, 1, 1),
        acl: &["@write", "@string", "@fast"],
        group: "string",
        summary: "Increment the integer value of a key by one",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::Decr,
        name: "decr",
        arity: 2,
        flags: WRITE_GROW_FAST,
        keys: (1, 1, 1),
        acl: &["@write", "@string", "@fast"],
        group: "string",
        summary: "Decrement the integer value of a key by one",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::IncrBy,
        name: "incrby",
        arity: 3,
        flags: WRITE_GROW_FAST,
        keys: (1, 1, 1),
        acl: &["@write", "@string", "@fast"],
        group: "string",
        summary: "Increment the integer value of a key by the given amount",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::DecrBy,
        name: "decrby",
        arity: 3,
        flags: WRITE_GROW_FAST,
        keys: (1, 1, 1),
        acl: &["@write", "@string", "@fast"],
        group: "string",
        summary: "Decrement the integer value of a key by the given number",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::MGet,
        name: "mget",
        arity: -2,
        flags: READ_FAST,
        keys: (1, -1, 1),
        acl: &["@read", "@string", "@fast"],
        group: "string",
        summary: "Get the values of all the given keys",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::MSet,
        name: "mset",
        arity: -3,
        flags: WRITE_GROW,
        keys: (1, -1, 2),
        acl: &["@write", "@string", "@slow"],
        group: "string",
        summary: "Set multiple keys to multiple values",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::Del,
        name: "del",
        arity: -2,
        flags: &["write"],
        keys: (1, -1, 1),
        acl: &["@keyspace", "@write", "@slow"],
        group: "generic",
        summary: "Delete a key",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::Exists,
        name: "exists",
        arity: -2,
        flags: READ_FAST,
        keys: (1, -1, 1),
        acl: &["@keyspace", "@read", "@fast"],
        group: "generic",
        summary: "Determine if a key exists",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::Expire,
        name: "expire",
        arity: -3,
        flags: &["write", "fast"],
        keys: (1, 1, 1),
        acl: &["@keyspace", "@write", "@fast"],
        group: "generic",
        summary: "Set a key's time to live in seconds (options: NX, XX, GT, LT)",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::PExpire,
        name: "pexpire",
        arity: -3,
        flags: &["write", "fast"],
        keys: (1, 1, 1),
        acl: &["@keyspace", "@write", "@fast"],
        group: "generic",
        summary: "Set a key's time to live in milliseconds (options: NX, XX, GT, LT)",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::Ttl,
        name: "ttl",
        arity: 2,
        flags: READ_FAST,
        keys: (1, 1, 1),
        acl: &["@keyspace", "@read", "@fast"],
        group: "generic",
        summary: "Get the time to live for a key in seconds",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::PTtl,
        name: "pttl",
        arity: 2,
        flags: READ_FAST,
        keys: (1, 1, 1),
        acl: &["@keyspace", "@read", "@fast"],
        group: "generic",
        summary: "Get the time to live for a key in milliseconds",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::Ping,
        name: "ping",
        arity: -1,
        flags: &["fast"],
        keys: (0, 0, 0),
        acl: &["@fast", "@connection"],
        group: "connection",
        summary: "Ping the server",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::Echo,
        name: "echo",
        arity: 2,
        flags: &["loading", "stale", "fast"],
        keys: (0, 0, 0),
        acl: &["@fast", "@connection"],
        group: "connection",
        summary: "Echo the given string",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::DbSize,
        name: "dbsize",
        arity: 1,
        flags: READ_FAST,
        keys: (0, 0, 0),
        acl: &["@keyspace", "@read", "@fast"],
        group: "server",
        summary: "Return the number of keys in the selected database",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::FlushAll,
        name: "flushall",
        arity: -1,
        flags: &["write"],
        keys: (0, 0, 0),
        acl: &["@keyspace", "@write", "@slow", "@dangerous"],
        group: "server",
        summary: "Remove all keys from all databases",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::Quit,
        name: "quit",
        arity: -1,
        flags: &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        keys: (0, 0, 0),
        acl: &["@fast", "@connection"],
        group: "connection",
        summary: "Close the connection",
        subcommands: &[],
    },
    Spec {
        cmd: Cmd::Command,
        name: "command",
        arity: -1,
        flags: &["loading", "stale"],
        keys: (0, 0, 0),
        acl: &["@slow", "@connection"],
        group: "server",
        summary: "Get array of Redis command details",
        subcommands: &[
            Sub {
                name: "count",
                arity: 2,
                flags: &["loading", "stale"],
                acl: &["@slow", "@connection"],
                summary: "Get total number of Redis commands",
            },
            Sub {
                name: "docs",
                arity: -2,
                flags: &["loading", "stale"],
                acl: &["@slow", "@connection"],
                summary: "Get array of specific Redis command documentation",
            },
            Sub {
                name: "info",
                arity: -2,
                flags: &["loading", "stale"],
                acl: &["@slow", "@connection"],
                summary: "Get array of specific Redis command details, or all when no argument is given",
            },
            Sub {
                name: "list",
                arity: -2,
                flags: &["loading", "stale"],
                acl: &["@slow", "@connection"],
                summary: "Get an array of Redis command names",
            },
            Sub {
                name: "help",
                arity: 2,
                flags: &["loading", "stale"],
                acl: &["@slow", "@connection"],
                summary: "Show helpful text about the different subcommands",
            },
        ],
    },
    Spec {
        cmd: Cmd::Config,
        name: "config",
        arity: -2,
        flags: &[],
        keys: (0, 0, 0),
        acl: &["@slow"],
        group: "server",
        summary: "A container for server configuration commands",
        subcommands: &[
            Sub {
                name: "get",
                arity: -3,
                flags: ADMIN,
                acl: &["@admin", "@slow", "@dangerous"],
                summary: "Get the values of configuration parameters",
            },
            Sub {
                name: "help",
                arity: 2,
                flags: &["loading", "stale"],
                acl: &["@slow"],
                summary: "Show helpful text about the different subcommands",
            },
        ],
    },
    Spec {
        cmd: Cmd::Debug,
        name: "debug",
        arity: -2,
        flags: ADMIN,
        keys: (0, 0, 0),
        acl: &["@admin", "@slow", "@dangerous"],
        group: "server",
        summary: "A container for debugging commands (here: SET-ACTIVE-EXPIRE)",
        subcommands: &[],
    },
];

/// The configuration parameters `CONFIG GET` reports: what `redis-benchmark` asks
/// before it starts. Nothing is saved to disk.
const CONFIG: &[(&str, &str)] = &[("save", ""), ("appendonly", "no")];

fn find(name: &[u8]) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = argc as i64;
    let arity = i64::from(arity);
    if arity > 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// `%.128s`: at most 128 bytes of `s`.
fn cut(s: &[u8]) -> &[u8] {
    &s[..s.len().min(128)]
}

fn error_format(out: &mut Vec<u8>, parts: &[&[u8]]) {
    resp::error(out, &parts.concat());
}

fn wrong_arity(out: &mut Vec<u8>, fullname: &str) {
    error_format(
        out,
        &[
            b"ERR wrong number of arguments for '",
            fullname.as_bytes(),
            b"' command",
        ],
    );
}

/// Redis's reply to an unknown command: the name, and the first arguments up to 128
/// bytes in all, each quoted.
fn unknown_command(out: &mut Vec<u8>, args: &Args) {
    let mut listed = Vec::new();
    for arg in args.from(1) {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        listed.push(b'\'');
        listed.extend_from_slice(&arg[..arg.len().min(room)]);
        listed.extend_from_slice(b"' ");
    }
    error_format(
        out,
        &[
            b"ERR unknown command '",
            cut(args.get(0)),
            b"', with args beginning with: ",
            &listed,
        ],
    );
}

/// Makes room for `n` more reply bytes, fallibly; false if the instance is out of
/// memory. Small replies need no check: the reserve covers them.
fn room(out: &mut Vec<u8>, n: usize) -> bool {
    n < 1024 || (!memory::under_pressure() && memory::fallible(|| out.try_reserve(n)).is_ok())
}

/// Milliseconds since the Unix epoch: Redis validates expiry times against it (a time
/// that would overflow once added to now is refused).
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

impl Db {
    /// Runs one command, appending its reply to `out`.
    pub fn execute(&mut self, args: &Args, out: &mut Vec<u8>) -> Flow {
        let argc = args.len();
        let Some(spec) = find(args.get(0)) else {
            unknown_command(out, args);
            return Flow::Continue;
        };
        if !spec.subcommands.is_empty() && argc >= 2 {
            let name = args.get(1);
            let Some(sub) = spec.subcommands.iter().find(|s| is(name, s.name)) else {
                error_format(
                    out,
                    &[
                        b"ERR unknown subcommand '",
                        cut(name),
                        b"'. Try ",
                        &args.get(0).to_ascii_uppercase(),
                        b" HELP.",
                    ],
                );
                return Flow::Continue;
            };
            if !arity_ok(sub.arity, argc) {
                wrong_arity(out, &format!("{}|{}", spec.name, sub.name));
                return Flow::Continue;
            }
        } else if !arity_ok(spec.arity, argc) {
            wrong_arity(out, spec.name);
            return Flow::Continue;
        }
        if spec.flags.contains(&"denyoom") && memory::under_pressure() {
            resp::error(out, OOM);
            return Flow::Continue;
        }
        let mark = out.len();
        let result = match spec.cmd {
            Cmd::Get => self.get(args, out),
            Cmd::Set => self.set(args, out),
            Cmd::Incr => self.incr_by(args.get(1), 1, out),
            Cmd::Decr => self.incr_by(args.get(1), -1, out),
            Cmd::IncrBy | Cmd::DecrBy => {
                let by = string2ll(args.get(2));
                match (spec.cmd, by) {
                    (_, None) => {
                        resp::error(out, NOT_INTEGER);
                        Ok(())
                    }
                    (Cmd::DecrBy, Some(i64::MIN)) => {
                        resp::error(out, b"ERR decrement would overflow");
                        Ok(())
                    }
                    (Cmd::DecrBy, Some(by)) => self.incr_by(args.get(1), -by, out),
                    (_, Some(by)) => self.incr_by(args.get(1), by, out),
                }
            }
            Cmd::MGet => self.mget(args, out),
            Cmd::MSet => self.mset(args, out),
            Cmd::Expire => self.expire(args, Unit::Seconds, out),
            Cmd::PExpire => self.expire(args, Unit::Millis, out),
            Cmd::Quit => {
                resp::simple(out, "OK");
                return Flow::Close;
            }
            Cmd::Del => {
                let mut n = 0;
                for key in args.from(1) {
                    if self.store.lookup(key, self.now).is_some() {
                        self.store.remove(key);
                        n += 1;
                    }
                }
                resp::integer(out, n);
                Ok(())
            }
            Cmd::Exists => {
                let mut n = 0;
                for key in args.from(1) {
                    if self.store.lookup(key, self.now).is_some() {
                        n += 1;
                    }
                }
                resp::integer(out, n);
                Ok(())
            }
            Cmd::Ttl => {
                self.ttl(args.get(1), Unit::Seconds, out);
                Ok(())
            }
            Cmd::PTtl => {
                self.ttl(args.get(1), Unit::Millis, out);
                Ok(())
            }
            Cmd::Ping => {
                if argc > 2 {
                    wrong_arity(out, "ping");
                } else if argc == 2 {
                    resp::bulk(out, args.get(1));
                } else {
                    resp::simple(out, "PONG");
                }
                Ok(())
            }
            Cmd::Echo => {
                resp::bulk(out, args.get(1));
                Ok(())
            }
            Cmd::DbSize => {
                resp::integer(out, self.store.len() as i64);
                Ok(())
            }
            Cmd::FlushAll => {
                let mode = argc == 2 && (is(args.get(1), "sync") || is(args.get(1), "async"));
                if argc == 1 || mode {
                    self.store.clear();
                    resp::simple(out, "OK");
                } else {
                    resp::error(out, SYNTAX);
                }
                Ok(())
            }
            Cmd::Command => {
                command(args, out);
                Ok(())
            }
            Cmd::Config => {
                config(args, out);
                Ok(())
            }
            Cmd::Debug => {
                self.debug(args, out);
                Ok(())
            }
        };
        if result.is_err() {
            out.truncate(mark);
            resp::error(out, OOM);
        }
        Flow::Continue
    }

    fn get(&mut self, args: &Args, out: &mut Vec<u8>) -> Result<(), Oom> {
        match self.store.lookup(args.get(1), self.now) {
            Some(entry) => {
                if !room(out, entry.value.len() + 16) {
                    return Err(Oom);
                }
                resp::bulk(out, &entry.value);
            }
            None => resp::nil(out),
        }
        Ok(())
    }

    /// `SET key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]`, options in any
    /// order, accepted and refused as Redis 7 does.
    fn set(&mut self, args: &Args, out: &mut Vec<u8>) -> Result<(), Oom> {
        let (mut nx, mut xx, mut get, mut keep_ttl) = (false, false, false, false);
        let mut expire: Option<(Unit, &[u8])> = None;
        let mut j = 3;
        while j < args.len() {
            let opt = args.get(j);
            let next = (j + 1 < args.len()).then(|| args.get(j + 1));
            let unit = expire.map(|(unit, _)| unit);
            if is(opt, "nx") && !xx {
                nx = true;
            } else if is(opt, "xx") && !nx {
                xx = true;
            } else if is(opt, "get") {
                get = true;
            } else if is(opt, "keepttl") && expire.is_none() {
                keep_ttl = true;
            } else if let (true, Some(next)) = (
                is(opt, "ex") && !keep_ttl && unit != Some(Unit::Millis),
                next,
            ) {
                expire = Some((Unit::Seconds, next));
                j += 1;
            } else if let (true, Some(next)) = (
                is(opt, "px") && !keep_ttl && unit != Some(Unit::Seconds),
                next,
            ) {
                expire = Some((Unit::Millis, next));
                j += 1;
            } else {
                resp::error(out, SYNTAX);
                return Ok(());
            }
            j += 1;
        }
        let ttl = match expire {
            None if keep_ttl => Ttl::Keep,
            None => Ttl::Persist,
            Some((unit, given)) => {
                let Some(ms) = string2ll(given) else {
                    resp::error(out, NOT_INTEGER);
                    return Ok(());
                };
                match self.expiry_in(ms, unit, true) {
                    Some(at) => Ttl::At(at),
                    None => {
                        resp::error(out, b"ERR invalid expire time in 'set' command");
                        return Ok(());
                    }
                }
            }
        };
        let key = args.get(1);
        let value = try_copy(args.get(2))?;
        let found = match self.store.lookup(key, self.now) {
            Some(entry) => {
                if get {
                    if !room(out, entry.value.len() + 16) {
                        return Err(Oom);
                    }
                    resp::bulk(out, &entry.value);
                }
                true
            }
            None => {
                if get {
                    resp::nil(out);
                }
                false
            }
        };
        if (nx && found) || (xx && !found) {
            if !get {
                resp::nil(out);
            }
            return Ok(());
        }
        self.store.set(key, value, ttl)?;
        if !get {
            resp::simple(out, "OK");
        }
        Ok(())
    }

    /// The store time `amount` (in `unit`) from now, or `None` where Redis answers
    /// "invalid expire time": a time that overflows once converted to milliseconds and
    /// added to the Unix time now, or (for `SET`, `strict`) a time that is not positive.
    fn expiry_in(&self, amount: i64, unit: Unit, strict: bool) -> Option<u64> {
        if strict && amount <= 0 {
            return None;
        }
        let ms = match unit {
            Unit::Seconds => amount.checked_mul(1000)?,
            Unit::Millis => amount,
        };
        ms.checked_add(unix_ms())?;
        if ms <= 0 {
            // Already past: the caller deletes the key.
            return Some(0);
        }
        Some(self.now.saturating_add(ms as u64))
    }

    fn incr_by(&mut self, key: &[u8], by: i64, out: &mut Vec<u8>) -> Result<(), Oom> {
        let current = match self.store.lookup(key, self.now) {
            Some(entry) => match string2ll(&entry.value) {
                Some(v) => v,
                None => {
                    resp::error(out, NOT_INTEGER);
                    return Ok(());
                }
            },
            None => 0,
        };
        let Some(new) = current.checked_add(by) else {
            resp::error(out, b"ERR increment or decrement would overflow");
            return Ok(());
        };
        let mut digits = Vec::with_capacity(20);
        resp::decimal(&mut digits, new);
        self.store.set(key, try_copy(&digits)?, Ttl::Keep)?;
        resp::integer(out, new);
        Ok(())
    }

    fn mget(&mut self, args: &Args, out: &mut Vec<u8>) -> Result<(), Oom> {
        resp::array(out, args.len() - 1);
        for key in args.from(1) {
            match self.store.lookup(key, self.now) {
                Some(entry) => {
                    if !room(out, entry.value.len() + 16) {
                        return Err(Oom);
                    }
                    resp::bulk(out, &entry.value);
                }
                None => resp::nil(out),
            }
        }
        Ok(())
    }

    /// `MSET`: all or nothing. Every value and new key is copied, and the table made
    /// large enough, before any key changes.
    fn mset(&mut self, args: &Args, out: &mut Vec<u8>) -> Result<(), Oom> {
        if args.len().is_multiple_of(2) {
            wrong_arity(out, "mset");
            return Ok(());
        }
        let pairs = args.len() / 2;
        // (key, its copy if it is new, the value's copy)
        type Prepared<'a> = (&'a [u8], Option<Box<[u8]>>, Box<[u8]>);
        let mut prepared: Vec<Prepared> = Vec::new();
        memory::fallible(|| prepared.try_reserve_exact(pairs)).map_err(|_| Oom)?;
        let mut new_keys = 0;
        for i in 0..pairs {
            let key = args.get(1 + 2 * i);
            let owned = match self.store.lookup(key, self.now) {
                Some(_) => None,
                None => {
                    new_keys += 1;
                    Some(try_copy(key)?)
                }
            };
            prepared.push((key, owned, try_copy(args.get(2 + 2 * i))?));
        }
        self.store.reserve(new_keys)?;
        for (key, owned, value) in prepared {
            self.store.set_prepared(key, owned, value, Ttl::Persist)?;
        }
        resp::simple(out, "OK");
        Ok(())
    }

    /// `EXPIRE` / `PEXPIRE key time [NX|XX|GT|LT]`.
    fn expire(&mut self, args: &Args, unit: Unit, out: &mut Vec<u8>) -> Result<(), Oom> {
        let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
        for opt in args.from(3) {
            if is(opt, "nx") {
                nx = true;
            } else if is(opt, "xx") {
                xx = true;
            } else if is(opt, "gt") {
                gt = true;
            } else if is(opt, "lt") {
                lt = true;
            } else {
                error_format(out, &[b"ERR Unsupported option ", opt]);
                return Ok(());
            }
        }
        if nx && (xx || gt || lt) {
            resp::error(
                out,
                b"ERR NX and XX, GT or LT options at the same time are not compatible",
            );
            return Ok(());
        }
        if gt && lt {
            resp::error(
                out,
                b"ERR GT and LT options at the same time are not compatible",
            );
            return Ok(());
        }
        let Some(amount) = string2ll(args.get(2)) else {
            resp::error(out, NOT_INTEGER);
            return Ok(());
        };
        let Some(at) = self.expiry_in(amount, unit, false) else {
            let name = if unit == Unit::Seconds {
                "expire"
            } else {
                "pexpire"
            };
            error_format(
                out,
                &[
                    b"ERR invalid expire time in '",
                    name.as_bytes(),
                    b"' command",
                ],
            );
            return Ok(());
        };
        let key = args.get(1);
        let Some(entry) = self.store.lookup(key, self.now) else {
            resp::integer(out, 0);
            return Ok(());
        };
        let current = entry.expires_at();
        // A key without an expiry has an infinite time to live for GT and LT.
        let refused = (nx && current.is_some())
            || (xx && current.is_none())
            || (gt && current.is_none_or(|c| at <= c))
            || (lt && current.is_some_and(|c| at >= c));
        if refused {
            resp::integer(out, 0);
            return Ok(());
        }
        if at <= self.now {
            self.store.remove(key);
        } else {
            self.store.set_expiry(key, at)?;
        }
        resp::integer(out, 1);
        Ok(())
    }

    fn ttl(&mut self, key: &[u8], unit: Unit, out: &mut Vec<u8>) {
        let now = self.now;
        let reply = match self.store.lookup(key, now) {
            None => -2,
            Some(entry) => match entry.expires_at() {
                None => -1,
                Some(at) => {
                    let ms = at.saturating_sub(now) as i64;
                    if unit == Unit::Seconds {
                        (ms + 500) / 1000
                    } else {
                        ms
                    }
                }
            },
        };
        resp::integer(out, reply);
    }

    /// `DEBUG SET-ACTIVE-EXPIRE 0|1`, which Redis's own tests use to see keys expire on
    /// access alone; the other `DEBUG` subcommands are not served.
    fn debug(&mut self, args: &Args, out: &mut Vec<u8>) {
        let sub = args.get(1);
        if is(sub, "set-active-expire") && args.len() == 3 {
            self.active_expire_off = string2ll(args.get(2)).unwrap_or(0) == 0;
            // Turned back on, the timer must be set again.
            self.store.expiry_changed = true;
            resp::simple(out, "OK");
        } else if is(sub, "help") && args.len() == 2 {
            help(
                out,
                "DEBUG",
                &[
                    "SET-ACTIVE-EXPIRE <0|1>",
                    "    Setting it to 0 disables expiring keys in background when they are not",
                    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
                    "    default.",
                ],
            );
        } else {
            error_format(
                out,
                &[
                    b"ERR unknown subcommand or wrong number of arguments for '",
                    cut(sub),
                    b"'. Try DEBUG HELP.",
                ],
            );
        }
    }
}

/// A `HELP` reply: the usage line, the lines, and Redis's closing `HELP` entry.
fn help(out: &mut Vec<u8>, command: &str, lines: &[&str]) {
    resp::array(out, lines.len() + 3);
    resp::simple(
        out,
        &format!("{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"),
    );
    for line in lines {
        resp::simple(out, line);
    }
    resp::simple(out, "HELP");
    resp::simple(out, "    Print this help.");
}

fn flags(out: &mut Vec<u8>, flags: &[&str]) {
    resp::array(out, flags.len());
    for flag in flags {
        resp::simple(out, flag);
    }
}

/// One command's `COMMAND INFO` entry (Redis 7's ten fields; no tips or key specs).
fn info_entry(out: &mut Vec<u8>, spec: &Spec) {
    resp::array(out, 10);
    resp::bulk(out, spec.name.as_bytes());
    resp::integer(out, i64::from(spec.arity));
    flags(out, spec.flags);
    resp::integer(out, i64::from(spec.keys.0));
    resp::integer(out, i64::from(spec.keys.1));
    resp::integer(out, i64::from(spec.keys.2));
    flags(out, spec.acl);
    resp::array(out, 0);
    resp::array(out, 0);
    resp::array(out, spec.subcommands.len());
    for sub in spec.subcommands {
        resp::array(out, 10);
        resp::bulk(out, format!("{}|{}", spec.name, sub.name).as_bytes());
        resp::integer(out, i64::from(sub.arity));
        flags(out, sub.flags);
        for _ in 0..3 {
            resp::integer(out, 0);
        }
        flags(out, sub.acl);
        for _ in 0..3 {
            resp::array(out, 0);
        }
    }
}

/// One command's `COMMAND DOCS` entry: its name and a map of summary, since, group.
fn docs_entry(out: &mut Vec<u8>, spec: &Spec) {
    resp::bulk(out, spec.name.as_bytes());
    let fields = if spec.subcommands.is_empty() { 6 } else { 8 };
    resp::array(out, fields);
    resp::bulk(out, b"summary");
    resp::bulk(out, spec.summary.as_bytes());
    resp::bulk(out, b"since");
    resp::bulk(out, b"1.0.0");
    resp::bulk(out, b"group");
    resp::bulk(out, spec.group.as_bytes());
    if !spec.subcommands.is_empty() {
        resp::bulk(out, b"subcommands");
        resp::array(out, spec.subcommands.len() * 2);
        for sub in spec.subcommands {
            resp::bulk(out, format!("{}|{}", spec.name, sub.name).as_bytes());
            resp::array(out, 4);
            resp::bulk(out, b"summary");
            resp::bulk(out, sub.summary.as_bytes());
            resp::bulk(out, b"group");
            resp::bulk(out, spec.group.as_bytes());
        }
    }
}

/// `COMMAND [COUNT | LIST | INFO [name...] | DOCS [name...] | HELP]`.
fn command(args: &Args, out: &mut Vec<u8>) {
    if args.len() == 1 {
        resp::array(out, COMMANDS.len());
        for spec in COMMANDS {
            info_entry(out, spec);
        }
        return;
    }
    let sub = args.get(1);
    if is(sub, "count") {
        resp::integer(out, COMMANDS.len() as i64);
    } else if is(sub, "list") {
        if args.len() > 2 {
            resp::error(out, SYNTAX);
            return;
        }
        resp::array(out, COMMANDS.len());
        for spec in COMMANDS {
            resp::bulk(out, spec.name.as_bytes());
        }
    } else if is(sub, "info") {
        if args.len() == 2 {
            resp::array(out, COMMANDS.len());
            for spec in COMMANDS {
                info_entry(out, spec);
            }
            return;
        }
        resp::array(out, args.len() - 2);
        for name in args.from(2) {
            match find(name) {
                Some(spec) => info_entry(out, spec),
                None => resp::nil(out),
            }
        }
    } else if is(sub, "docs") {
        let specs: Vec<&Spec> = if args.len() == 2 {
            COMMANDS.iter().collect()
        } else {
            args.from(2).filter_map(find).collect()
        };
        resp::array(out, specs.len() * 2);
        for spec in specs {
            docs_entry(out, spec);
        }
    } else {
        help(
            out,
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
            ],
        );
    }
}

/// `CONFIG GET pattern [pattern ...]` (glob patterns, case-insensitive), over the few
/// parameters in [`CONFIG`]; `CONFIG HELP`.
fn config(args: &Args, out: &mut Vec<u8>) {
    if is(args.get(1), "help") {
        help(
            out,
            "CONFIG",
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
            ],
        );
        return;
    }
    let matched: Vec<&(&str, &str)> = CONFIG
        .iter()
        .filter(|(name, _)| args.from(2).any(|pattern| glob(pattern, name.as_bytes())))
        .collect();
    resp::array(out, matched.len() * 2);
    for (name, value) in matched {
        resp::bulk(out, name.as_bytes());
        resp::bulk(out, value.as_bytes());
    }
}

/// A glob match with `*` and `?`, ignoring ASCII case. Iterative, remembering only the
/// last `*`: time at most pattern length × text length, and no recursion a long pattern
/// could overflow the stack with.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // The last `*` seen, and the text position it is matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c.eq_ignore_ascii_case(&text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` take one more byte, and try again after it.
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}
