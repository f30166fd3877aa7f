//! Python handlers: `netlet build server.py` packages an asyncio program with netlet's
//! Python SDK (`py/netlet/`: asyncio's event loop, transports and servers on netlet's
//! WIT) and componentizes it with componentize-py (CPython for wasm32-wasip2).
//!
//! The toolchain (`py/toolchain/requirements.txt`: componentize-py, pinned by hashes) is
//! installed with `python3 -m venv` and `pip install --require-hashes` into
//! `<cache>/py/toolchain-<hash of the file>/` the first time it is needed; the SDK and the
//! WIT go to `<cache>/py/sdk-<hash>/`. Both are embedded in this binary, so a netlet
//! binary always builds with the SDK it was made with. Only `python3` (3.10 or later,
//! with its `venv` module) must be installed.
//!
//! The component carries a custom section, `netlet-py`, naming the SDK version and what
//! the program's code reaches for (`create_connection`, datagram endpoints); `netlet
//! inspect` shows it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context as _;

use super::{Built, Options, absolute};

/// The version of the Python SDK, as the custom section records it.
pub const SDK_VERSION: &str = "0.1.0";

/// The custom section that marks a Python handler.
pub const SECTION: &str = "netlet-py";

/// The pinned toolchain: what pip installs.
const TOOLCHAIN: &[(&str, &str)] = &[(
    "requirements.txt",
    include_str!("../../../py/toolchain/requirements.txt"),
)];

/// The SDK and the WIT it is built against.
const SDK: &[(&str, &str)] = &[
    (
        "py/netlet/__init__.py",
        include_str!("../../../py/netlet/__init__.py"),
    ),
    (
        "py/netlet/loop.py",
        include_str!("../../../py/netlet/loop.py"),
    ),
    (
        "py/netlet/runtime.py",
        include_str!("../../../py/netlet/runtime.py"),
    ),
    ("wit/types.wit", include_str!("../../../wit/types.wit")),
    ("wit/net.wit", include_str!("../../../wit/net.wit")),
    ("wit/dgram.wit", include_str!("../../../wit/dgram.wit")),
    ("wit/handler.wit", include_str!("../../../wit/handler.wit")),
];

/// What the `netlet-py` section of a component says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyInfo {
    pub sdk_version: String,
    /// What the program's code uses that needs a grant or a listener: `tcp-server`,
    /// `tcp-connect`, `udp`.
    pub uses: Vec<String>,
}

impl PyInfo {
    fn encode(&self) -> String {
        format!("sdk={}\nuses={}\n", self.sdk_version, self.uses.join(","))
    }

    /// Reads the section of a component, if it has one.
    pub fn read(component: &[u8]) -> Option<PyInfo> {
        let payload = std::str::from_utf8(super::custom_section(component, SECTION)?).ok()?;
        let mut info = PyInfo {
            sdk_version: String::new(),
            uses: Vec::new(),
        };
        for line in payload.lines() {
            match line.split_once('=') {
                Some(("sdk", v)) => info.sdk_version = v.to_string(),
                Some(("uses", v)) => {
                    info.uses = v
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

    /// Whether the code uses `what` (`tcp-connect`, `udp`, ...).
    pub fn uses(&self, what: &str) -> bool {
        self.uses.iter().any(|u| u == what)
    }
}

/// A `.py` file, or a folder with `__main__.py`.
pub fn is_python(input: &Path) -> bool {
    if input.is_dir() {
        return input.join("__main__.py").exists();
    }
    input.extension().and_then(|e| e.to_str()) == Some("py")
}

/// python3 (3.10 or later), or one line saying what to install.
fn check_python() -> anyhow::Result<()> {
    const INSTALL: &str = "install Python 3.10 or later with venv (e.g. `apt-get install python3 python3-venv`) and run again";
    let out = match Command::new("python3")
        .args([
            "-c",
            "import sys, venv; print('%d.%d' % sys.version_info[:2])",
        ])
        .output()
    {
        Ok(out) => out,
        Err(_) => anyhow::bail!(
            "netlet build needs Python to build a Python handler and `python3` is not on PATH: {INSTALL}"
        ),
    };
    if !out.status.success() {
        anyhow::bail!("netlet build needs python3 with its venv module: {INSTALL}");
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (major, minor) = version.split_once('.').unwrap_or(("0", "0"));
    let (major, minor): (u32, u32) = (major.parse().unwrap_or(0), minor.parse().unwrap_or(0));
    if (major, minor) < (3, 10) {
        anyhow::bail!("netlet build needs Python 3.10 or later; `python3` is {version}: {INSTALL}");
    }
    Ok(())
}

/// The installed toolchain (a venv with componentize-py), installing it first if needed.
pub fn toolchain(cache_dir: &Path, quiet: bool) -> anyhow::Result<PathBuf> {
    let py_dir = super::language_dir(cache_dir, "py")?;
    let name = format!("toolchain-{}", super::files_hash(TOOLCHAIN));
    super::fill_once(&py_dir, &name, |dir| {
        super::write_files(dir, TOOLCHAIN)?;
        if !quiet {
            eprintln!(
                "netlet: installing the Python toolchain (componentize-py; pip, once) into {}",
                py_dir.join(&name).display()
            );
        }
        // The venv is made here and renamed into place with the rest: its python
        // finds its packages from where it is run, and only it is run (no scripts, whose
        // first lines name the temporary path).
        let venv = dir.join("venv");
        let out = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .context("cannot run python3 -m venv")?;
        if !out.status.success() {
            anyhow::bail!(
                "python3 -m venv failed making the Python toolchain's venv (on Debian: \
                 apt-get install python3-venv): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let out = Command::new(venv.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--require-hashes",
                "--only-binary",
                ":all:",
                "--no-deps",
                "-r",
            ])
            .arg(dir.join("requirements.txt"))
            .output()
            .context("cannot run the venv's pip")?;
        if !out.status.success() {
            anyhow::bail!(
                "pip failed installing the Python toolchain (componentize-py): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    })
}

/// Where the SDK (the folder holding `netlet/`) and the WIT are: the embedded copy, or,
/// for work on the SDK itself, a checkout's `py/` folder named by `NETLET_PY_SDK` (and
/// the `wit/` beside it).
fn sources(cache_dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    if let Some(dir) = std::env::var_os("NETLET_PY_SDK") {
        let dir = PathBuf::from(dir);
        return Ok((dir.clone(), dir.join("..").join("wit")));
    }
    let sdk = super::sdk_dir(cache_dir, "py", SDK)?;
    Ok((sdk.join("py"), sdk.join("wit")))
}

/// `netlet build` for Python.
pub fn build(options: &Options) -> anyhow::Result<Built> {
    let start = Instant::now();
    check_python()?;
    let toolchain = toolchain(&options.cache_dir, options.quiet)?;
    // componentize-py runs in a folder of its own: every path it gets is absolute (a
    // relative --cache-dir too).
    let python = absolute(&toolchain.join("venv").join("bin").join("python"));
    let (sdk, wit) = sources(&options.cache_dir)?;
    let (sdk, wit) = (absolute(&sdk), absolute(&wit));
    let input = options
        .input
        .canonicalize()
        .with_context(|| format!("{}: cannot read", options.input.display()))?;
    let (folder, main) = if input.is_dir() {
        (input.clone(), "__main__.py".to_string())
    } else {
        let name = input
            .file_name()
            .and_then(|n| n.to_str())
            .context("the file's name is not UTF-8")?
            .to_string();
        (input.parent().unwrap_or(Path::new("/")).to_path_buf(), name)
    };
    check_syntax(&input, &folder, &main)?;
    let output = options
        .output
        .clone()
        .unwrap_or_else(|| super::default_output(&options.input));
    let tmp = output.with_extension(format!("wasm.tmp{}", std::process::id()));
    let work = std::env::temp_dir().join(format!("netlet-py-build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let entry = format!(
        "# Made by netlet build: the component's entry module.\n\
         from netlet import runtime as _runtime\n\n\
         _runtime.prepare({main:?})\n\
         Handler = _runtime.Handler\n"
    );
    let written = std::fs::write(work.join("netlet_entry.py"), entry);
    let run = written
        .context("cannot write the entry module")
        .and_then(|()| {
            // componentize-py's entry point, run by the venv's python.
            Command::new(&python)
                .args([
                    "-c",
                    "import sys; from componentize_py import script; sys.exit(script())",
                ])
                .arg("-d")
                .arg(&wit)
                .args(["-w", "tcp-udp", "componentize", "netlet_entry", "-p"])
                .arg(&work)
                .arg("-p")
                .arg(&sdk)
                .arg("-p")
                .arg(&folder)
                .arg("-o")
                .arg(absolute(&tmp))
                .current_dir(&work)
                .output()
                .context("cannot run componentize-py")
        });
    let _ = std::fs::remove_dir_all(&work);
    let run = run?;
    if !run.status.success() {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!(
            "{}: {}",
            options.input.display(),
            build_error(&String::from_utf8_lossy(&run.stderr))
        );
    }
    let built = std::fs::read(&tmp).with_context(|| format!("cannot read {}", tmp.display()));
    let _ = std::fs::remove_file(&tmp);
    // componentize-py 0.25.1 never frees the `list<u8>` arguments of import calls
    // (every `write` would stay in memory): py_free.rs adds the missing deallocation.
    let mut component = super::py_free::free_list_arguments(&built?)
        .context("componentize-py's output has no bindings module to patch (wit_dylib_pop_list)")?;
    let info = PyInfo {
        sdk_version: SDK_VERSION.to_string(),
        uses: uses(&folder),
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

/// A syntax error reported by the system's python3, as it would report it (the
/// componentize-py build would say it inside a long trace).
fn check_syntax(input: &Path, folder: &Path, main: &str) -> anyhow::Result<()> {
    let file = folder.join(main);
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; compile(open(sys.argv[1], 'rb').read(), sys.argv[2], 'exec')",
        ])
        .arg(&file)
        .arg(main)
        .output()
        .context("cannot run python3")?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("File \"") || l.contains("<string>"))
        .collect();
    anyhow::bail!(
        "{}: {}",
        input.display(),
        lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
    )
}

/// The part of componentize-py's output that says what went wrong: the Python
/// traceback of the program's import, without the Rust backtrace after it.
fn build_error(stderr: &str) -> String {
    let text = stderr.split("\nCaused by:").next().unwrap_or(stderr).trim();
    let text = text
        .rsplit_once("AssertionError: ")
        .map(|(_, t)| t)
        .unwrap_or(text);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the program's `.py` files reach for, found in their text.
fn uses(folder: &Path) -> Vec<String> {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(folder) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "py") {
                text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let mut out = Vec::new();
    for (needle, what) in [
        ("create_server", "tcp-server"),
        ("start_server", "tcp-server"),
        ("create_connection", "tcp-connect"),
        ("open_connection", "tcp-connect"),
        ("create_datagram_endpoint", "udp"),
    ] {
        if text.contains(needle) && !out.iter().any(|o| o == what) {
            out.push(what.to_string());
        }
    }
    out
}

/// `a Python handler (asyncio: tcp-server, udp)`.
pub fn describe(info: &PyInfo) -> String {
    if info.uses.is_empty() {
        "a Python handler (asyncio)".to_string()
    } else {
        format!("a Python handler (asyncio: {})", info.uses.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_round_trips_through_a_section() {
        let info = PyInfo {
            sdk_version: SDK_VERSION.to_string(),
            uses: vec!["tcp-server".into(), "udp".into()],
        };
        let mut wasm = b"\0asm\x0d\x00\x01\x00".to_vec();
        super::super::append_custom_section(&mut wasm, SECTION, info.encode().as_bytes());
        assert_eq!(PyInfo::read(&wasm), Some(info));
        assert_eq!(PyInfo::read(b"\0asm\x0d\x00\x01\x00"), None);
    }

    #[test]
    fn build_errors_keep_the_python_traceback_only() {
        let stderr = "Traceback (most recent call last):\n  File \"x\", line 8, in <module>\n\
                      AssertionError: Traceback (most recent call last):\n  File \"/0/a.py\", line 1\n\
                      ImportError: nope\n\nCaused by:\n    stuff\nStack backtrace:\n   0: x\n";
        assert_eq!(
            build_error(stderr),
            "Traceback (most recent call last):\n  File \"/0/a.py\", line 1\nImportError: nope"
        );
    }
}
