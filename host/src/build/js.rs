//! JavaScript handlers: `netlet build server.js` bundles the handler with netlet's
//! JavaScript SDK (`js/sdk/`, Node's `net`, `dgram`, `http`, `events`, `buffer`, `timers`,
//! `console`, `util`, `process`, and the npm `ws` package's server, on netlet's WIT) and
//! componentizes it with componentize-js (StarlingMonkey), as `js/toolchain/build.mjs`
//! does.
//!
//! The toolchain (`js/toolchain/package.json` and its lock file: componentize-js and
//! esbuild) is installed with `npm ci` into `<cache>/js/toolchain-<hash of the lock>/` the
//! first time it is needed; the SDK, the build script and the WIT go to
//! `<cache>/js/sdk-<hash>/`. Both are embedded in this binary, so a netlet binary always
//! builds with the SDK it was made with. Only `node` and `npm` must be installed.
//!
//! The component carries a custom section, `netlet-js`, naming the SDK version and the
//! Node modules the handler uses; `netlet inspect` shows it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context as _;

use super::{Built, Options, absolute};

/// The version of the JavaScript SDK, as the custom section records it.
pub const SDK_VERSION: &str = "0.1.0";

/// The custom section that marks a JavaScript handler.
pub const SECTION: &str = "netlet-js";

/// The pinned toolchain: what `npm ci` installs.
const TOOLCHAIN: &[(&str, &str)] = &[
    (
        "package.json",
        include_str!("../../../js/toolchain/package.json"),
    ),
    (
        "package-lock.json",
        include_str!("../../../js/toolchain/package-lock.json"),
    ),
];

/// The build script, the SDK and the WIT they are built against.
const SDK: &[(&str, &str)] = &[
    ("build.mjs", include_str!("../../../js/toolchain/build.mjs")),
    (
        "engine.mjs",
        include_str!("../../../js/toolchain/engine.mjs"),
    ),
    ("sdk/buffer.js", include_str!("../../../js/sdk/buffer.js")),
    ("sdk/console.js", include_str!("../../../js/sdk/console.js")),
    ("sdk/dgram.js", include_str!("../../../js/sdk/dgram.js")),
    ("sdk/errors.js", include_str!("../../../js/sdk/errors.js")),
    ("sdk/events.js", include_str!("../../../js/sdk/events.js")),
    ("sdk/globals.js", include_str!("../../../js/sdk/globals.js")),
    ("sdk/http.js", include_str!("../../../js/sdk/http.js")),
    ("sdk/net.js", include_str!("../../../js/sdk/net.js")),
    ("sdk/process.js", include_str!("../../../js/sdk/process.js")),
    ("sdk/runtime.js", include_str!("../../../js/sdk/runtime.js")),
    (
        "sdk/string_decoder.js",
        include_str!("../../../js/sdk/string_decoder.js"),
    ),
    ("sdk/timers.js", include_str!("../../../js/sdk/timers.js")),
    (
        "sdk/timers-promises.js",
        include_str!("../../../js/sdk/timers-promises.js"),
    ),
    ("sdk/util.js", include_str!("../../../js/sdk/util.js")),
    ("sdk/wit.mjs", include_str!("../../../js/sdk/wit.mjs")),
    ("sdk/ws.js", include_str!("../../../js/sdk/ws.js")),
    ("wit/types.wit", include_str!("../../../wit/types.wit")),
    ("wit/net.wit", include_str!("../../../wit/net.wit")),
    ("wit/dgram.wit", include_str!("../../../wit/dgram.wit")),
    ("wit/handler.wit", include_str!("../../../wit/handler.wit")),
];

/// What the `netlet-js` section of a component says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsInfo {
    pub sdk_version: String,
    /// Node modules the handler's code requires, e.g. `events`, `net`.
    pub modules: Vec<String>,
}

impl JsInfo {
    fn encode(&self) -> String {
        format!(
            "sdk={}\nmodules={}\n",
            self.sdk_version,
            self.modules.join(",")
        )
    }

    /// Reads the section of a component, if it has one.
    pub fn read(component: &[u8]) -> Option<JsInfo> {
        let payload = std::str::from_utf8(super::custom_section(component, SECTION)?).ok()?;
        let mut info = JsInfo {
            sdk_version: String::new(),
            modules: Vec::new(),
        };
        for line in payload.lines() {
            match line.split_once('=') {
                Some(("sdk", v)) => info.sdk_version = v.to_string(),
                Some(("modules", v)) => {
                    info.modules = v
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(String::from)
                        .collect()
                }
                _ => {}
            }
        }
        Some(info)
    }
}

/// A JavaScript (or TypeScript) file, or a folder with `package.json`.
pub fn is_javascript(input: &Path) -> bool {
    if input.is_dir() {
        return input.join("package.json").exists() || input.join("index.js").exists();
    }
    matches!(
        input.extension().and_then(|e| e.to_str()),
        Some("js" | "mjs" | "cjs" | "ts" | "mts" | "cts")
    )
}

/// Node and npm, or one line saying what to install.
fn check_node() -> anyhow::Result<()> {
    const INSTALL: &str =
        "install Node.js 18 or later with npm (e.g. `apt-get install nodejs npm`) and run again";
    let version = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => anyhow::bail!(
            "netlet build needs Node.js to build JavaScript and `node` is not on PATH: {INSTALL}"
        ),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 18 {
        anyhow::bail!("netlet build needs Node.js 18 or later; `node` is {version}: {INSTALL}");
    }
    match Command::new("npm").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => anyhow::bail!(
            "netlet build needs npm to install its JavaScript toolchain and `npm` is not on PATH: {INSTALL}"
        ),
    }
}

/// The installed toolchain, installing it first if needed.
pub fn toolchain(cache_dir: &Path, quiet: bool) -> anyhow::Result<PathBuf> {
    let js_dir = super::language_dir(cache_dir, "js")?;
    let name = format!("toolchain-{}", super::files_hash(TOOLCHAIN));
    super::fill_once(&js_dir, &name, |dir| {
        super::write_files(dir, TOOLCHAIN)?;
        if !quiet {
            eprintln!(
                "netlet: installing the JavaScript toolchain (componentize-js, esbuild; npm ci, once) into {}",
                js_dir.join(&name).display()
            );
        }
        let out = Command::new("npm")
            .args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .current_dir(dir)
            .env("npm_config_update_notifier", "false")
            .output()
            .context("cannot run npm")?;
        if !out.status.success() {
            anyhow::bail!(
                "npm ci failed installing the JavaScript toolchain: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    })
}

/// Where the build script, the SDK and the WIT are: the embedded copy, or, for work on
/// the SDK itself, a checkout's `js/` folder named by `NETLET_JS_SDK` (its `toolchain/`
/// and `sdk/`, and the `wit/` beside it).
fn sources(cache_dir: &Path) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    if let Some(dir) = std::env::var_os("NETLET_JS_SDK") {
        let dir = PathBuf::from(dir);
        let wit = dir.join("..").join("wit");
        return Ok((
            dir.join("toolchain").join("build.mjs"),
            dir.join("sdk"),
            wit,
        ));
    }
    let sdk = super::sdk_dir(cache_dir, "js", SDK)?;
    Ok((sdk.join("build.mjs"), sdk.join("sdk"), sdk.join("wit")))
}

/// `netlet build` for JavaScript.
pub fn build(options: &Options) -> anyhow::Result<Built> {
    let start = Instant::now();
    check_node()?;
    let toolchain = toolchain(&options.cache_dir, options.quiet)?;
    let (script, sdk, wit) = sources(&options.cache_dir)?;
    let input = options
        .input
        .canonicalize()
        .with_context(|| format!("{}: cannot read", options.input.display()))?;
    let output = options
        .output
        .clone()
        .unwrap_or_else(|| super::default_output(&options.input));
    let tmp = output.with_extension(format!("wasm.tmp{}", std::process::id()));
    let meta = output.with_extension(format!("meta.tmp{}", std::process::id()));
    let config = format!(
        "{{\"toolchain\":{},\"sdk\":{},\"wit\":{},\"input\":{},\"output\":{},\"meta\":{}}}",
        json_string(&toolchain),
        json_string(&sdk),
        json_string(&wit),
        json_string(&input),
        json_string(&absolute(&tmp)),
        json_string(&absolute(&meta)),
    );
    let run = Command::new("node")
        .arg(&script)
        .arg(&config)
        .output()
        .context("cannot run node")?;
    let cleanup = || {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&meta);
    };
    if !run.status.success() {
        cleanup();
        let why = String::from_utf8_lossy(&run.stderr).trim().to_string();
        anyhow::bail!("{}: {why}", options.input.display());
    }
    let built = std::fs::read(&tmp).with_context(|| format!("cannot read {}", tmp.display()));
    let modules = std::fs::read_to_string(&meta).unwrap_or_default();
    cleanup();
    let mut component = built?;
    let info = JsInfo {
        sdk_version: SDK_VERSION.to_string(),
        modules: meta_modules(&modules),
    };
    super::append_custom_section(&mut component, SECTION, info.encode().as_bytes());
    std::fs::write(&tmp, &component).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &output).with_context(|| format!("cannot write {}", output.display()))?;
    Ok(Built {
        output,
        bytes: component.len(),
        elapsed: start.elapsed(),
        summary: describe(&info),
    })
}

/// `a JavaScript handler using events, net`.
pub fn describe(info: &JsInfo) -> String {
    if info.modules.is_empty() {
        "a JavaScript handler (no Node modules)".to_string()
    } else {
        format!("a JavaScript handler using {}", info.modules.join(", "))
    }
}

/// The `modules` list of build.mjs's meta file (`{"modules":["net"],...}`).
fn meta_modules(json: &str) -> Vec<String> {
    let Some(start) = json.find("\"modules\":[") else {
        return Vec::new();
    };
    let rest = &json[start + "\"modules\":[".len()..];
    let list = &rest[..rest.find(']').unwrap_or(0)];
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

fn json_string(path: &Path) -> String {
    let mut out = String::from("\"");
    for c in path.to_string_lossy().chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_round_trips_through_a_section() {
        let info = JsInfo {
            sdk_version: SDK_VERSION.to_string(),
            modules: vec!["events".into(), "net".into()],
        };
        let mut wasm = b"\0asm\x0d\x00\x01\x00".to_vec();
        super::super::append_custom_section(&mut wasm, SECTION, info.encode().as_bytes());
        assert_eq!(JsInfo::read(&wasm), Some(info));
        assert_eq!(JsInfo::read(b"\0asm\x0d\x00\x01\x00"), None);
    }

    #[test]
    fn meta_lists_modules() {
        assert_eq!(
            meta_modules(r#"{"modules":["dgram","net"],"entry":"a.js"}"#),
            ["dgram", "net"]
        );
        assert!(meta_modules(r#"{"modules":[],"entry":"a.js"}"#).is_empty());
    }
}
