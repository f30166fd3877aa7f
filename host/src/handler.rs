//! A handler: a component compiled by the [`crate::engine`] and linked with everything a
//! netlet guest may import (WASI with netlet's bounds, netlet's own interfaces), ready to
//! be instantiated any number of times.

use std::path::Path;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::bindings::TcpUdpPre;
use crate::engine::{ComponentSource, LoadError, Loader, Precompiled, first_line};
use crate::instance::GuestState;

/// A compiled, linked component, ready to instantiate any number of times.
pub struct Handler {
    /// A short name for logs: the file's stem (`echo` for `echo.wasm`).
    pub name: Arc<str>,
    pub engine: Engine,
    pub pre: TcpUdpPre<GuestState>,
    /// The SHA-256 of the file it was loaded from.
    pub sha256: String,
    pub component: Component,
}

impl Handler {
    /// Loads the component `source` names.
    pub fn load(
        loader: &Loader,
        source: &ComponentSource,
        precompiled: Precompiled,
    ) -> Result<Self, LoadError> {
        let bytes = source.read()?;
        Self::from_bytes(
            loader,
            &source.name(),
            &source.to_string(),
            &bytes,
            precompiled,
        )
    }

    /// Loads the component at `path`: a `.wasm` component, or with
    /// [`Precompiled::Allow`] a `.cwasm` that `netlet compile` made.
    pub fn from_file(
        loader: &Loader,
        path: &Path,
        precompiled: Precompiled,
    ) -> Result<Self, LoadError> {
        Self::load(
            loader,
            &ComponentSource::File(path.to_path_buf()),
            precompiled,
        )
    }

    /// Loads a component from memory; `file` is what errors call it. Precompiled
    /// machine code is refused unless `precompiled` allows it.
    pub fn from_bytes(
        loader: &Loader,
        name: &str,
        file: &str,
        bytes: &[u8],
        precompiled: Precompiled,
    ) -> Result<Self, LoadError> {
        let engine = &loader.engine;
        let (component, sha256) = crate::engine::compile(loader, file, bytes, precompiled)?;
        let file = file.to_string();
        let linker = new_linker(engine).map_err(|e| LoadError::Link {
            file: file.clone(),
            reason: first_line(&e),
        })?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link {
                file: file.clone(),
                reason: first_line(&e),
            })?;
        let pre = TcpUdpPre::new(pre).map_err(|e| LoadError::Link {
            file: file.clone(),
            reason: first_line(&e),
        })?;
        Ok(Handler {
            name: name.into(),
            engine: engine.clone(),
            pre,
            sha256,
            component,
        })
    }
}

/// Everything a handler may import: WASI preview 2 (sync) and netlet's interfaces.
fn new_linker(engine: &Engine) -> wasmtime::Result<Linker<GuestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    crate::wasi::shadow_blocking_io(&mut linker, GuestState::deadlined)?;
    crate::wasi::cap_socket_creation(&mut linker, GuestState::capped)?;
    crate::instance::state::add_to_linker(&mut linker)?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineOptions;

    #[test]
    fn machine_code_loads_only_when_allowed() {
        let loader = Loader::new(&EngineOptions::default()).unwrap();
        let echo = include_bytes!(concat!(env!("NETLET_GUEST_DIR"), "/echo.wasm"));
        let machine_code = loader.engine.precompile_component(echo).unwrap();
        let load = |precompiled| {
            Handler::from_bytes(&loader, "echo", "echo.cwasm", &machine_code, precompiled)
        };
        match load(Precompiled::Refuse) {
            Err(e @ LoadError::Precompiled { .. }) => {
                let message = e.to_string();
                assert!(
                    message.starts_with("echo.cwasm: precompiled machine code"),
                    "{message}"
                );
                assert!(message.contains("--allow-precompiled"), "{message}");
                assert!(!message.contains('\n'), "{message}");
            }
            Err(e) => panic!("refused for another reason: {e}"),
            Ok(_) => panic!("machine code was loaded without being allowed"),
        }
        let handler = load(Precompiled::Allow).unwrap();
        assert_eq!(handler.sha256, crate::cache::sha256_hex(&machine_code));
        // WebAssembly itself needs no permission.
        Handler::from_bytes(&loader, "echo", "echo.wasm", echo, Precompiled::Refuse).unwrap();
    }
}
