//! Compiled components kept on disk, so a restart (or a second handler running the same
//! component) does not compile again.
//!
//! An entry is keyed by the SHA-256 of the component and a hash of the engine's
//! compatibility (wasmtime version, compiler settings, target). Loading machine code is
//! trusting it, so an entry is never used blindly: the directory must not be writable by
//! other users, each entry carries the SHA-256 of the component it was compiled from and
//! of its own bytes (a truncated, corrupted or copied entry is ignored), and wasmtime itself refuses an artifact of another version or
//! configuration (a foreign entry is ignored). Whatever is ignored is compiled again and
//! replaced.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A compile cache directory.
#[derive(Clone, Debug)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// Opens (creating it, private to the user) the cache at `dir`. `Err` says why the
    /// cache cannot be used; the caller then compiles without it.
    pub fn open(dir: &Path) -> Result<Self, String> {
        ensure_private_dir(dir)?;
        Ok(CompileCache {
            dir: dir.to_path_buf(),
        })
    }

    fn key(engine: &Engine, source: &str) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        format!("{source}-{:016x}", hasher.finish())
    }

    /// The component for `bytes`: from the cache when a trusted entry exists, otherwise
    /// compiled (and stored). `source` is [`sha256_hex`] of `bytes` (the caller has it).
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        source: &str,
    ) -> wasmtime::Result<Component> {
        let key = Self::key(engine, source);
        let artifact = self.dir.join(format!("{key}.cwasm"));
        let digest = self.dir.join(format!("{key}.sha256"));
        // The digest file names both the component the entry was compiled from and the
        // artifact's own hash: an entry copied from another key, or truncated, or
        // rewritten, fails one of the two and is compiled again.
        if let (Ok(data), Ok(sums)) = (std::fs::read(&artifact), std::fs::read_to_string(&digest))
            && sums.trim() == format!("{source} {}", sha256_hex(&data))
        {
            // SAFETY: the bytes are the ones this cache wrote for this very component
            // (both hashes match, in a directory only this user can write), and wasmtime
            // checks that they were compiled by this version with this configuration
            // before using them.
            if let Ok(component) = unsafe { Component::deserialize(engine, &data) } {
                return Ok(component);
            }
        }
        let data = engine.precompile_component(bytes)?;
        // SAFETY: `data` was produced just now by `precompile_component` on this engine.
        let component = unsafe { Component::deserialize(engine, &data) }?;
        // A failed write only costs the next start a compile.
        let sums = format!("{source} {}\n", sha256_hex(&data));
        let _ = write_atomically(&artifact, &data)
            .and_then(|()| write_atomically(&digest, sums.as_bytes()));
        Ok(component)
    }
}

/// Creates `dir` (and its parents) if needed and checks that only this user can write
/// it: what netlet keeps there (compiled code, the JavaScript toolchain) is run, so a
/// directory others can write cannot be trusted. `Err` says why.
pub fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // A directory made here is private from the start.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by other users; what netlet keeps there cannot be trusted (chmod go-w it)",
            dir.display()
        ));
    }
    // SAFETY: geteuid(2) has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(format!("{} belongs to another user", dir.display()));
    }
    Ok(())
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(data)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    drop(file);
    std::fs::rename(&tmp, path)
}
