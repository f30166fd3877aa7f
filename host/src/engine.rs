//! The wasmtime engine, and loading a component into a ready-to-instantiate [`Handler`].
//!
//! Loading checks, in order, what a user most likely got wrong, so each failure is one
//! clear line naming the file: not WebAssembly at all, a core module instead of a
//! component, a component that is not a netlet handler (wrong world), a component that
//! imports something netlet does not provide.
//!
//! Machine code is loaded only by intent: a precompiled component (`netlet compile`'s
//! `.cwasm`) only when the user allowed it ([`Precompiled::Allow`], from
//! `--allow-precompiled`), and otherwise only netlet's own compile cache's entries,
//! which it verifies ([`crate::cache`]). What a file starts with decides nothing alone.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use crate::cache::CompileCache;
use crate::config::{HandlerConfig, Isolation};

/// The interface every netlet handler exports.
pub const HANDLER_EXPORT: &str = "netlet:net/handler@0.1.0";

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    /// An `oci://` component could not be had (the message names the reference).
    #[error("{0}")]
    Registry(String),
    #[error("{file}: not a WebAssembly file (it does not start with the \\0asm magic number)")]
    NotWasm { file: String },
    #[error(
        "{file}: a core WebAssembly module, not a component: build it for wasm32-wasip2 \
         (cargo build --target wasm32-wasip2) with the netlet-guest SDK"
    )]
    CoreModule { file: String },
    #[error("{file}: not a valid WebAssembly component: {reason}")]
    Invalid { file: String, reason: String },
    #[error(
        "{file}: not a netlet handler: it does not export {HANDLER_EXPORT} (its exports: {exports}); \
         build handlers with the netlet-guest SDK"
    )]
    WrongWorld { file: String, exports: String },
    #[error("{file}: cannot be run by netlet: {reason}")]
    Link { file: String, reason: String },
    #[error(
        "{file}: precompiled machine code, which runs unchecked as a native binary would: \
         netlet loads it only when asked to, with --allow-precompiled (allow-precompiled = \
         true in a manifest or scenario file); allow only files you compiled yourself"
    )]
    Precompiled { file: String },
}

/// Whether a component may be precompiled machine code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precompiled {
    /// Only WebAssembly: compiled here, or taken from netlet's own verified cache.
    #[default]
    Refuse,
    /// The user asked for it (`--allow-precompiled`): a `.cwasm` is trusted as a
    /// native binary would be.
    Allow,
}

impl Precompiled {
    /// `Allow` when `allowed` (a handler's `allow_precompiled`).
    pub fn allowed(allowed: bool) -> Self {
        if allowed {
            Precompiled::Allow
        } else {
            Precompiled::Refuse
        }
    }
}

/// Where a component's bytes come from.
#[derive(Clone, PartialEq)]
pub enum ComponentSource {
    /// A file: a `.wasm` component (or, when allowed, a `.cwasm`).
    File(PathBuf),
    /// A component built into this binary (the demo's examples): `name` is what logs
    /// call it, `file` what errors call it.
    Embedded {
        name: &'static str,
        file: &'static str,
        bytes: &'static [u8],
    },
    /// A component in an OCI registry (`oci://HOST/REPO:TAG`): each read resolves a tag
    /// again, so a reload picks up a pushed version.
    Oci(crate::oci::OciRef),
}

impl std::fmt::Debug for ComponentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComponentSource::File(path) => f.debug_tuple("File").field(path).finish(),
            ComponentSource::Embedded { file, bytes, .. } => {
                write!(f, "Embedded({file}, {} bytes)", bytes.len())
            }
            ComponentSource::Oci(r) => write!(f, "Oci({r})"),
        }
    }
}

impl std::fmt::Display for ComponentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComponentSource::File(path) => write!(f, "{}", path.display()),
            ComponentSource::Embedded { file, .. } => write!(f, "{file}"),
            ComponentSource::Oci(r) => write!(f, "{r}"),
        }
    }
}

impl ComponentSource {
    /// A short name for logs: the file's stem (`echo` for `echo.wasm`).
    pub fn name(&self) -> String {
        match self {
            ComponentSource::File(path) => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "guest".into()),
            ComponentSource::Embedded { name, .. } => name.to_string(),
            ComponentSource::Oci(r) => r.name(),
        }
    }

    /// The file, if it is one (what `--watch` watches).
    pub fn path(&self) -> Option<&Path> {
        match self {
            ComponentSource::File(path) => Some(path),
            ComponentSource::Embedded { .. } | ComponentSource::Oci(_) => None,
        }
    }

    /// The component's bytes.
    pub fn read(&self) -> Result<Cow<'static, [u8]>, LoadError> {
        match self {
            ComponentSource::File(path) => {
                std::fs::read(path)
                    .map(Cow::Owned)
                    .map_err(|error| LoadError::Read {
                        file: path.display().to_string(),
                        error,
                    })
            }
            ComponentSource::Embedded { bytes, .. } => Ok(Cow::Borrowed(bytes)),
            ComponentSource::Oci(r) => {
                let pulled =
                    crate::oci::fetch(r).map_err(|e| LoadError::Registry(e.to_string()))?;
                if let Some(why) = &pulled.offline {
                    crate::log::deploy(
                        None,
                        &format!(
                            "{r}: {why}; using the cached {} (layer {})",
                            pulled.manifest, pulled.layer
                        ),
                    );
                }
                Ok(Cow::Owned(pulled.bytes))
            }
        }
    }
}

/// Engine settings that matter to callers.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// Where compiled components are cached across runs; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Use wasmtime's pooling allocator (for `--isolation connection`, where an
    /// instance is made per connection).
    pub pooling: Option<Pooling>,
}

/// The pooling allocator's size: how many instances may live at once, and the memory
/// each may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pooling {
    pub instances: u32,
    pub max_memory: usize,
}

impl Pooling {
    /// The pool a handler with `config` needs: one in connection isolation (sized by
    /// [`HandlerConfig::pool_size`]), none in shared isolation.
    pub fn for_config(config: &HandlerConfig) -> Option<Pooling> {
        (config.isolation == Isolation::Connection).then(|| Pooling {
            instances: config.pool_size(),
            max_memory: config.max_memory,
        })
    }
}

/// How often the engine's epoch advances; event deadlines are counted in these ticks
/// (and `--event-timeout` is at least one).
pub const EPOCH_TICK: Duration = crate::config::EVENT_TIMEOUT_RESOLUTION;

/// The default cache directory: `$NETLET_CACHE_DIR`, else `$XDG_CACHE_HOME/netlet`, else
/// `~/.cache/netlet`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("NETLET_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("netlet"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("netlet"))
}

/// An engine and, when enabled, its compile cache: what loads components.
#[derive(Clone)]
pub struct Loader {
    pub engine: Engine,
    pub cache: Option<CompileCache>,
}

impl Loader {
    /// An engine built with `options`, and its cache (a cache that cannot be used is
    /// reported once and skipped: it only costs compile time).
    pub fn new(options: &EngineOptions) -> anyhow::Result<Loader> {
        let engine = new_engine(options)?;
        let cache = options
            .cache_dir
            .as_deref()
            .and_then(|dir| match CompileCache::open(dir) {
                Ok(cache) => Some(cache),
                Err(why) => {
                    eprintln!("netlet: compile cache disabled: {why}");
                    None
                }
            });
        Ok(Loader { engine, cache })
    }
}

/// Builds an engine.
pub fn new_engine(options: &EngineOptions) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // A guest stuck in a loop is stopped at its call's deadline (see `guest`).
    config.epoch_interruption(true);
    // For `perf`: the guests' compiled functions by name in /tmp/perf-PID.map (the book's
    // performance chapter, "Profiling a handler").
    if std::env::var_os("NETLET_PERFMAP").is_some_and(|v| v != "0") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let mut mappings = None;
    if let Some(pool) = options.pooling {
        mappings = reserve_mappings(pool.instances)?;
        let per_component = 16;
        let mut pooling = wasmtime::PoolingAllocationConfig::default();
        pooling
            .total_component_instances(pool.instances)
            .total_core_instances(pool.instances.saturating_mul(per_component))
            // One linear memory per instance on average (a guest with two gets half as
            // many instances), so the pool's memory mappings stay within its budget.
            .total_memories(pool.instances)
            .total_tables(pool.instances.saturating_mul(per_component))
            // Preemptive calls run on fibers, and a store keeps its last fiber stack for
            // its next call: one stack per live instance (the default, 1,000, made the
            // 1,001st connection's instance trap).
            .total_stacks(pool.instances)
            .max_core_instances_per_component(per_component)
            .max_memories_per_component(2)
            .max_tables_per_component(per_component)
            .max_memory_size(pool.max_memory);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
        // A copy-on-write memory image maps each instance's memory in four pieces, not
        // two: the copy of a guest's data segments it saves is a few KiB.
        config.memory_init_cow(false);
        // Many slots: reserve what an instance may use rather than 4 GiB each (bounds
        // checks instead of guard pages; thousands of connections fit in the address space).
        let reservation = (pool.max_memory as u64)
            .next_multiple_of(1 << 16)
            .max(1 << 20);
        config.memory_reservation(reservation);
        config.memory_guard_size(1 << 16);
        config.memory_reservation_for_growth(0);
    }

    let engine = Engine::new(&config)?;
    start_epoch_ticker(&engine, mappings);
    Ok(engine)
}

/// Memory mappings a pool's fiber stack costs (the stack and its guard page), made for
/// every stack when the pool is.
const STACK_MAPPINGS: u64 = 2;

/// Memory mappings a pooled instance's linear memory costs while the instance lives
/// (its accessible part, then the rest of its slot; without a copy-on-write image).
const MEMORY_MAPPINGS: u64 = 2;

/// Mappings left for everything else in the process (code, heaps, thread stacks,
/// sockets, instances outside a pool).
const MAPPINGS_RESERVE: u64 = 4_096;

/// Mappings the fiber stacks of the pools alive now have made.
static POOL_STACKS: AtomicU64 = AtomicU64::new(0);

/// Pooled (per-connection) instances alive now, in every pool.
static POOLED_LIVE: AtomicU64 = AtomicU64::new(0);

/// The kernel's limit on a process's memory mappings (`vm.max_map_count`, 65,530 by
/// default). Past it every `mmap` fails, the allocator's included, and the process
/// aborts: pools are sized, and pooled instances counted, to stay below it.
fn max_map_count() -> Option<u64> {
    static MAX: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
}

/// A pool's fiber stacks' share of [`POOL_STACKS`], given back when its engine is gone.
struct Mappings(u64);

impl Drop for Mappings {
    fn drop(&mut self) {
        POOL_STACKS.fetch_sub(self.0, Ordering::Relaxed);
    }
}

/// Accounts for a pool of `instances`: its stacks, made now, and room for all its
/// instances' memories with the other pools' stacks. A pool that could not be served in
/// full is refused with a line that says what to change.
fn reserve_mappings(instances: u32) -> anyhow::Result<Option<Mappings>> {
    let Some(max) = max_map_count() else {
        return Ok(None);
    };
    let stacks = u64::from(instances) * STACK_MAPPINGS;
    let memories = u64::from(instances) * MEMORY_MAPPINGS;
    let mut made = POOL_STACKS.load(Ordering::Relaxed);
    loop {
        let needed = made + stacks + memories + MAPPINGS_RESERVE;
        if needed > max {
            let room =
                max.saturating_sub(MAPPINGS_RESERVE + made) / (STACK_MAPPINGS + MEMORY_MAPPINGS);
            let others = if made > 0 {
                " beside the other handlers' pools"
            } else {
                ""
            };
            anyhow::bail!(
                "--isolation connection needs a pool of {instances} instances (--max-connections \
                 plus 2 per shard), about {} memory mappings{others}, more than the kernel \
                 allows (vm.max_map_count = {max}): lower --max-connections so the pool is at \
                 most {room}, or raise vm.max_map_count",
                stacks + memories
            );
        }
        match POOL_STACKS.compare_exchange(
            made,
            made + stacks,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => return Ok(Some(Mappings(stacks))),
            Err(now) => made = now,
        }
    }
}

/// A pooled instance's place under the process's mapping limit (see [`PoolSlot::take`]).
pub struct PoolSlot(());

impl PoolSlot {
    /// Room for one more pooled instance's memory, or why not: while pools coexist (a
    /// handler restarting with a new pool, several handlers) their instances share what
    /// the kernel allows after every pool's stacks.
    pub fn take() -> Result<PoolSlot, String> {
        let Some(max) = max_map_count() else {
            POOLED_LIVE.fetch_add(1, Ordering::Relaxed);
            return Ok(PoolSlot(()));
        };
        let limit = max.saturating_sub(MAPPINGS_RESERVE + POOL_STACKS.load(Ordering::Relaxed))
            / MEMORY_MAPPINGS;
        let mut live = POOLED_LIVE.load(Ordering::Relaxed);
        loop {
            if live >= limit {
                return Err(format!(
                    "{live} per-connection instances are alive, as many as the kernel's memory \
                     mappings allow beside the pools' stacks (vm.max_map_count = {max})"
                ));
            }
            match POOLED_LIVE.compare_exchange(live, live + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(PoolSlot(())),
                Err(now) => live = now,
            }
        }
    }
}

impl Drop for PoolSlot {
    fn drop(&mut self) {
        POOLED_LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for as long as the engine lives;
/// its pool's mappings are given back when it is gone.
fn start_epoch_ticker(engine: &Engine, mappings: Option<Mappings>) {
    let weak = engine.weak();
    let _ = std::thread::Builder::new()
        .name("netlet-epoch".into())
        .spawn(move || {
            let _mappings = mappings;
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
}

/// Returns the heap the compiler freed to the system. Compiling a large component (a
/// JavaScript handler's 14 MB engine) leaves some 300 MB in glibc's arenas, which
/// otherwise stays in the process's RSS for as long as it runs.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim(3) only returns free heap pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Compiles (or, from netlet's verified cache, loads) a component and checks that it is
/// a netlet handler this host can run; returns it with the SHA-256 of `bytes`. `file` is
/// what errors call it. Precompiled machine code is refused unless `precompiled`
/// allows it.
pub fn compile(
    loader: &Loader,
    file: &str,
    bytes: &[u8],
    precompiled: Precompiled,
) -> Result<(Component, String), LoadError> {
    let engine = &loader.engine;
    let file = file.to_string();
    let sha256 = crate::cache::sha256_hex(bytes);
    let component = if bytes.starts_with(b"\x7fELF") {
        if precompiled != Precompiled::Allow {
            return Err(LoadError::Precompiled { file });
        }
        // SAFETY: the user asked for precompiled code to be run (as a native binary
        // would be); wasmtime refuses one made by another version or with another
        // configuration.
        unsafe { Component::deserialize(engine, bytes) }.map_err(|e| LoadError::Invalid {
            file: file.clone(),
            reason: format!("precompiled component not usable here: {}", first_line(&e)),
        })?
    } else {
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm { file });
        }
        if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
            return Err(LoadError::CoreModule { file });
        }
        let compiled = match &loader.cache {
            Some(cache) => cache.load_or_compile(engine, bytes, &sha256),
            None => Component::from_binary(engine, bytes),
        };
        release_freed_memory();
        compiled.map_err(|e| LoadError::Invalid {
            file: file.clone(),
            reason: first_line(&e),
        })?
    };

    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if !exports.iter().any(|e| e == HANDLER_EXPORT) {
        let exports = if exports.is_empty() {
            "none".to_string()
        } else {
            exports.join(", ")
        };
        return Err(LoadError::WrongWorld { file, exports });
    }
    Ok((component, sha256))
}

/// The error's message and its causes on one line (wasmtime's may span several).
pub fn first_line(e: &wasmtime::Error) -> String {
    format!("{e:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}
