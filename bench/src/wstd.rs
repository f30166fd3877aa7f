//! Runs the wstd echo component (a WASI command that owns its loop over `wasi:sockets`)
//! under wasmtime, on one thread: the "just give the guest wasi:sockets" alternative.

use std::path::Path;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Serves until killed; the guest prints `listening ADDR`.
pub fn serve(component: &Path, addr: &str, cache_dir: Option<&Path>) -> anyhow::Result<()> {
    let mut config = Config::new();
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    let engine = Engine::new(&config)?;
    let bytes = std::fs::read(component)?;
    let component = match cache_dir {
        Some(dir) => cached(&engine, &bytes, dir)?,
        None => Component::new(&engine, &bytes)?,
    };
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    let wasi = WasiCtx::builder()
        .inherit_stdout()
        .inherit_stderr()
        .inherit_network()
        .allow_tcp(true)
        .args(&["wstd-echo", addr])
        .build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut store = Store::new(
            &engine,
            State {
                wasi,
                table: ResourceTable::new(),
            },
        );
        let command = wasmtime_wasi::p2::bindings::Command::instantiate_async(
            &mut store, &component, &linker,
        )
        .await?;
        command
            .wasi_cli_run()
            .call_run(&mut store)
            .await?
            .map_err(|()| anyhow::anyhow!("the wstd guest failed"))
    })
}

/// The bench's own small compile cache (the cold-start row measures with and without
/// one, as netlet's): keyed by the component and the engine.
fn cached(engine: &Engine, bytes: &[u8], dir: &Path) -> anyhow::Result<Component> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    let path = dir.join(format!("wstd-{:016x}.cwasm", h.finish()));
    // SAFETY: the bench's cache holds only what this function wrote, for this engine;
    // wasmtime checks the version and configuration before using it.
    if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
        return Ok(component);
    }
    let data = engine.precompile_component(bytes)?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(&path, &data)?;
    // SAFETY: made just now by this engine.
    Ok(unsafe { Component::deserialize(engine, &data) }?)
}
