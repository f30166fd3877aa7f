//! `netlet build`: a handler's source made into a component.
//!
//! Each language's toolchain is pinned by a lock file in this repository, embedded in
//! the netlet binary and installed on first use into the cache directory
//! (`<cache>/js/toolchain-<hash>/`, `<cache>/py/toolchain-<hash>/`), so building needs no
//! setup beyond the language's own runtime. JavaScript is [`js`], Python is [`py`].
//!
//! What is installed is run, so it lives in a directory only this user can write, is
//! filled under a lock (concurrent builds install once) and appears whole: it is made
//! in a temporary directory and renamed into place.

pub mod js;
pub mod py;
mod py_free;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

/// What to build and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// A source file, or a folder (a JavaScript package with `package.json`, a Python
    /// program with `__main__.py`).
    pub input: PathBuf,
    /// Where to write the component (default: beside the input, with `.wasm`).
    pub output: Option<PathBuf>,
    /// The cache directory (toolchains are installed under it).
    pub cache_dir: PathBuf,
    /// Say nothing on stderr while installing.
    pub quiet: bool,
}

/// A component that was built.
#[derive(Debug)]
pub struct Built {
    pub output: PathBuf,
    pub bytes: usize,
    pub elapsed: Duration,
    /// One line about the handler, e.g. `a JavaScript handler using net, events`.
    pub summary: String,
}

/// Builds `options.input`, choosing the toolchain by what the input is.
pub fn build(options: &Options) -> anyhow::Result<Built> {
    let input = &options.input;
    if !input.exists() {
        anyhow::bail!("{}: no such file or folder", input.display());
    }
    // The toolchains run in folders of their own: the paths they get are absolute.
    let options = &Options {
        cache_dir: absolute(&options.cache_dir),
        ..options.clone()
    };
    if js::is_javascript(input) {
        return js::build(options);
    }
    if py::is_python(input) {
        return py::build(options);
    }
    anyhow::bail!(
        "{}: netlet build makes components from JavaScript (a .js, .mjs or .cjs file, or a \
         folder with package.json) and Python (a .py file, or a folder with __main__.py); \
         Rust handlers are built with cargo (see the README)",
        input.display()
    )
}

/// `path` from the current directory, when it is relative.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    }
}

/// The default output: `dir/name.js` -> `dir/name.wasm`; a folder `dir/app` ->
/// `dir/app.wasm`.
pub fn default_output(input: &Path) -> PathBuf {
    if input.is_dir() {
        let name = input
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_os_string()))
            .unwrap_or_else(|| "handler".into());
        let mut out = input
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        out.push(name);
        out.set_extension("wasm");
        out
    } else {
        input.with_extension("wasm")
    }
}

/// An exclusive lock on a directory, held while it is filled (flock(2): released when
/// the process ends, however it ends).
struct DirLock(File);

impl DirLock {
    fn acquire(dir: &Path) -> anyhow::Result<DirLock> {
        let path = dir.join(".lock");
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        // SAFETY: flock(2) on a descriptor this File owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            anyhow::bail!(
                "cannot lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(DirLock(file))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // SAFETY: unlocking the descriptor locked in `acquire`.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Makes `parent/name` by running `fill` on an empty directory, once: later calls (in
/// this process or another) find it complete. A failed fill leaves nothing behind.
/// `<cache>/<language>/`, made private on first use.
fn language_dir(cache_dir: &Path, language: &str) -> anyhow::Result<PathBuf> {
    crate::cache::ensure_private_dir(cache_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = cache_dir.join(language);
    crate::cache::ensure_private_dir(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(dir)
}

/// A language's embedded SDK files (and what builds with them), written out once per
/// version of them under `<cache>/<language>/sdk-<hash>/`.
fn sdk_dir(cache_dir: &Path, language: &str, files: &[(&str, &str)]) -> anyhow::Result<PathBuf> {
    let dir = language_dir(cache_dir, language)?;
    let name = format!("sdk-{}", files_hash(files));
    fill_once(&dir, &name, |dir| write_files(dir, files))
}

fn fill_once(
    parent: &Path,
    name: &str,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<PathBuf> {
    let target = parent.join(name);
    let complete = target.join(".complete");
    if complete.exists() {
        return Ok(target);
    }
    let _lock = DirLock::acquire(parent)?;
    if complete.exists() {
        return Ok(target);
    }
    let tmp = parent.join(format!(".{name}.tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let filled = fill(&tmp).and_then(|()| {
        std::fs::write(tmp.join(".complete"), b"").context("cannot mark it complete")?;
        // An incomplete one left by a crash is replaced.
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&tmp, &target)
            .with_context(|| format!("cannot move it to {}", target.display()))
    });
    if let Err(e) = filled {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(target)
}

/// Writes `files` (relative path, contents) under `dir`.
fn write_files(dir: &Path, files: &[(&str, &str)]) -> anyhow::Result<()> {
    for (name, contents) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Hex SHA-256 over files' names and contents, shortened: a directory name that changes
/// with what is in it.
fn files_hash(files: &[(&str, &str)]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, contents) in files {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((contents.len() as u64).to_le_bytes());
        h.update(contents.as_bytes());
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Appends a custom section to a WebAssembly binary (a component or a module: custom
/// sections may come anywhere at the top level).
pub fn append_custom_section(wasm: &mut Vec<u8>, name: &str, payload: &[u8]) {
    let mut body = Vec::new();
    leb128(&mut body, name.len() as u64);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    wasm.push(0);
    leb128(wasm, body.len() as u64);
    wasm.extend_from_slice(&body);
}

/// The payload of the first top-level custom section called `name`.
pub fn custom_section<'a>(wasm: &'a [u8], name: &str) -> Option<&'a [u8]> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return None;
    }
    let mut i = 8;
    while i < wasm.len() {
        let id = wasm[i];
        i += 1;
        let (size, next) = read_leb128(wasm, i)?;
        let end = next.checked_add(usize::try_from(size).ok()?)?;
        if end > wasm.len() {
            return None;
        }
        if id == 0 {
            let (len, at) = read_leb128(wasm, next)?;
            let name_end = at.checked_add(usize::try_from(len).ok()?)?;
            if name_end <= end && &wasm[at..name_end] == name.as_bytes() {
                return Some(&wasm[name_end..end]);
            }
        }
        i = end;
    }
    None
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb128(bytes: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let mut result = 0u64;
    let mut shift = 0;
    loop {
        let b = *bytes.get(i)?;
        i += 1;
        if shift > 63 {
            return None;
        }
        result |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Some((result, i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_sections_round_trip() {
        // A component header (layer 1) with no sections, then ours.
        let mut wasm = b"\0asm\x0d\x00\x01\x00".to_vec();
        append_custom_section(&mut wasm, "other", b"x");
        append_custom_section(&mut wasm, "netlet-js", &[7u8; 300]);
        assert_eq!(custom_section(&wasm, "netlet-js"), Some(&[7u8; 300][..]));
        assert_eq!(custom_section(&wasm, "other"), Some(&b"x"[..]));
        assert_eq!(custom_section(&wasm, "missing"), None);
        // Truncated input is not an answer.
        assert_eq!(custom_section(&wasm[..wasm.len() - 1], "netlet-js"), None);
    }

    #[test]
    fn fill_once_is_whole_or_nothing() {
        let dir = std::env::temp_dir().join(format!("netlet-fill-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let failed = fill_once(&dir, "t", |d| {
            std::fs::write(d.join("half"), b"")?;
            anyhow::bail!("no")
        });
        assert!(failed.is_err());
        assert!(!dir.join("t").exists());
        let made = fill_once(&dir, "t", |d| Ok(std::fs::write(d.join("f"), b"1")?)).unwrap();
        assert!(made.join("f").exists());
        // A second fill is not run.
        let again = fill_once(&dir, "t", |_| panic!("filled twice")).unwrap();
        assert_eq!(again, made);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
