//! The settings as command-line flags: clap arguments made from the
//! [settings table](super::settings), so each flag's name, help, accepted values and
//! shown default are the table's, and a value is parsed by the same code as in a
//! manifest.
//!
//! [`RunFlags`] is every setting (`netlet run`); [`CompileFlags`] the ones compiled code
//! depends on (`netlet compile`).

use clap::builder::{PossibleValuesParser, ValueParser};
use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};

use super::HandlerConfig;
use super::settings::{Arity, SETTINGS, Setting, Value};

/// Every setting, as `netlet run`'s flags (and its trailing `-- ARGS`).
#[derive(Clone, Debug, Default)]
pub struct RunFlags(pub HandlerConfig);

/// What `netlet compile` needs to know: the engine a `.cwasm` will run on differs in
/// connection isolation, by its memory layout.
#[derive(Clone, Debug, Default)]
pub struct CompileFlags(pub HandlerConfig);

const COMPILE: &[&str] = &["isolation", "max-memory"];

fn all(_: &Setting) -> bool {
    true
}

fn for_compile(s: &Setting) -> bool {
    COMPILE.contains(&s.name)
}

/// The clap argument for `setting`.
fn arg(setting: &'static Setting) -> Arg {
    let help = match setting.default_text() {
        Some(default) => format!("{} [default: {default}]", setting.help),
        None => setting.help.to_string(),
    };
    let arg = Arg::new(setting.name).help(help);
    let parser: ValueParser = if setting.choices.is_empty() {
        // Checked as the table parses it, so a bad value is a usage error naming the
        // flag; read again from the text once every flag is known.
        ValueParser::new(move |text: &str| -> Result<String, String> {
            setting
                .set(&mut HandlerConfig::default(), &Value::Text(text))
                .map(|()| text.to_string())
        })
    } else {
        PossibleValuesParser::new(setting.choices).into()
    };
    match setting.arity {
        Arity::Switch => arg.long(setting.name).action(ArgAction::SetTrue),
        Arity::One => arg
            .long(setting.name)
            .value_name(setting.value_name)
            .value_parser(parser)
            .action(ArgAction::Set),
        Arity::Many => arg
            .long(setting.name)
            .value_name(setting.value_name)
            .value_parser(parser)
            .action(ArgAction::Append),
        Arity::Trailing => arg
            .value_name(setting.value_name)
            .value_parser(parser)
            .num_args(0..)
            .last(true)
            .action(ArgAction::Append),
    }
}

fn augment(mut cmd: Command, which: fn(&Setting) -> bool) -> Command {
    for setting in SETTINGS.iter().filter(|s| which(s)) {
        cmd = cmd.arg(arg(setting));
    }
    cmd
}

/// Applies the flags given in `matches` to `config`, and validates the result.
fn update(
    config: &mut HandlerConfig,
    matches: &ArgMatches,
    which: fn(&Setting) -> bool,
) -> Result<(), clap::Error> {
    let invalid =
        |message: String| clap::Error::raw(clap::error::ErrorKind::ValueValidation, message + "\n");
    for setting in SETTINGS.iter().filter(|s| which(s)) {
        let value = match setting.arity {
            Arity::Switch => matches.get_flag(setting.name).then_some(Value::Bool(true)),
            Arity::One => matches
                .get_one::<String>(setting.name)
                .map(|text| Value::Text(text)),
            Arity::Many | Arity::Trailing => matches
                .get_many::<String>(setting.name)
                .map(|texts| Value::List(texts.map(|t| Value::Text(t)).collect())),
        };
        if let Some(value) = value {
            setting
                .set(config, &value)
                .map_err(|e| invalid(format!("--{}: {e}", setting.name)))?;
        }
    }
    *config = config.clone().validate().map_err(invalid)?;
    Ok(())
}

impl clap::Args for RunFlags {
    fn augment_args(cmd: Command) -> Command {
        augment(cmd, all)
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        augment(cmd, all)
    }
}

impl FromArgMatches for RunFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Self::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        update(&mut self.0, matches, all)
    }
}

impl clap::Args for CompileFlags {
    fn augment_args(cmd: Command) -> Command {
        augment(cmd, for_compile)
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        augment(cmd, for_compile)
    }
}

impl FromArgMatches for CompileFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Self::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        update(&mut self.0, matches, for_compile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::document::Document;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Run {
        #[command(flatten)]
        flags: RunFlags,
    }

    fn flags(args: &[&str]) -> Result<HandlerConfig, clap::Error> {
        Run::try_parse_from(std::iter::once("run").chain(args.iter().copied())).map(|r| r.flags.0)
    }

    #[test]
    fn no_flags_are_the_defaults() {
        assert_eq!(flags(&[]).unwrap(), HandlerConfig::default());
    }

    #[test]
    fn a_manifest_key_and_its_flag_agree() {
        // The same value through a flag and through a manifest key gives the same config,
        // and a table with no settings gives the flags' defaults.
        let cases: &[(&[&str], &str)] = &[
            (
                &["--tcp", "127.0.0.1:1", "--tcp", "8124"],
                "tcp = [\"127.0.0.1:1\", \"8124\"]",
            ),
            (&["--udp", "[::1]:0"], "udp = \"[::1]:0\""),
            (&["--shards", "3"], "shards = 3"),
            (&["--allow", "10.0.0.0/8:*"], "allow = [\"10.0.0.0/8:*\"]"),
            (&["--allow-dns"], "allow-dns = true"),
            (&["--allow-half-open"], "allow-half-open = true"),
            (&["--allow-precompiled"], "allow-precompiled = true"),
            (&["--isolation", "connection"], "isolation = \"connection\""),
            (&["--on-trap", "close"], "on-trap = \"close\""),
            (&["--max-memory", "32MiB"], "max-memory = \"32MiB\""),
            (&["--max-memory", "1"], "max-memory = 1"),
            (&["--event-timeout", "0"], "event-timeout = 0"),
            (&["--max-connections", "10"], "max-connections = 10"),
            (&["--idle-timeout", "0s"], "idle-timeout = 0"),
            (&["--high-water-mark", "0"], "high-water-mark = 0"),
            (&["--max-write-buffer", "1KiB"], "max-write-buffer = 1024"),
            (&["--grace", "1.5"], "grace = 1.5"),
            (&["--drain-timeout", "2m"], "drain-timeout = \"2m\""),
            (&["--drain-delay", "500ms"], "drain-delay = \"500ms\""),
            (&["--reuse-port"], "reuse-port = true"),
            (&["--", "a", "b"], "args = [\"a\", \"b\"]"),
            (
                &[
                    "--tls",
                    "127.0.0.1:0",
                    "--tls-cert",
                    "a.pem",
                    "--tls-key",
                    "a.key",
                    "--tls-cert",
                    "b.pem",
                    "--tls-key",
                    "b.key",
                    "--tls-alpn",
                    "http/1.1",
                    "--tls-client-ca",
                    "ca.pem",
                    "--tls-handshake-timeout",
                    "2s",
                    "--tls-ca",
                    "roots.pem",
                ],
                "tls = \"127.0.0.1:0\"\ntls-cert = [\"a.pem\", \"b.pem\"]\n\
                 tls-key = [\"a.key\", \"b.key\"]\ntls-alpn = \"http/1.1\"\n\
                 tls-client-ca = \"ca.pem\"\ntls-handshake-timeout = \"2s\"\ntls-ca = \"roots.pem\"",
            ),
            (&[], ""),
        ];
        for (args, toml) in cases {
            let from_flags = flags(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let doc = Document {
                file: "m.toml",
                text: toml,
            };
            let mut from_file = HandlerConfig::default();
            doc.read_settings(
                "handler",
                &doc.parse().unwrap(),
                &mut from_file,
                &[],
                |_, _| Ok(()),
            )
            .unwrap();
            assert_eq!(
                from_flags,
                from_file.validate().unwrap(),
                "{args:?} vs {toml}"
            );
        }
    }

    #[test]
    fn bad_values_are_usage_errors_naming_the_flag() {
        for (args, flag) in [
            (&["--tcp", "nope"][..], "--tcp"),
            (&["--shards", "0"], "--shards"),
            (&["--max-memory", "lots"], "--max-memory"),
            (&["--isolation", "none"], "--isolation"),
            (&["--allow", "1.2.3.4"], "--allow"),
            (&["--tls", "127.0.0.1:0"], "--tls-cert"),
            (
                &[
                    "--tls",
                    "127.0.0.1:0",
                    "--tls-cert",
                    "a",
                    "--tls-key",
                    "b",
                    "--tls-cert",
                    "c",
                ],
                "--tls-key",
            ),
            (&["--tls-alpn", ""], "--tls-alpn"),
        ] {
            let e = flags(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            let text = e.to_string();
            assert!(text.contains("invalid") && text.contains(flag), "{text}");
        }
    }

    #[test]
    fn help_shows_the_defaults_from_the_config() {
        let mut cmd = Run::command_for_help();
        let help = cmd.render_long_help().to_string();
        for shown in [
            "[default: 64MiB]",
            "[default: 1s]",
            "[default: 5s]",
            "[default: 30s]",
            "[default: 64KiB]",
            "[default: 16MiB]",
            "[default: shared]",
            "--allow-precompiled",
            "[possible values: restart, close]",
        ] {
            assert!(help.contains(shown), "{shown} not in\n{help}");
        }
    }

    impl Run {
        fn command_for_help() -> Command {
            <Run as clap::CommandFactory>::command()
        }
    }

    #[test]
    fn compile_takes_only_what_compiled_code_depends_on() {
        #[derive(Parser, Debug)]
        struct Compile {
            #[command(flatten)]
            flags: CompileFlags,
        }
        let c = Compile::try_parse_from([
            "compile",
            "--isolation",
            "connection",
            "--max-memory",
            "1MiB",
        ])
        .unwrap()
        .flags
        .0;
        assert_eq!(c.isolation, crate::config::Isolation::Connection);
        assert_eq!(c.max_memory, 1 << 20);
        assert!(Compile::try_parse_from(["compile", "--tcp", "1"]).is_err());
    }
}
