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
    if let Some(dir) = cache_dir {
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(wasmtime::Cache::new(cache)?));
    }
    let engine = Engine::new(&config)?;
    let component = Component::from_file(&engine, component)?;
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
