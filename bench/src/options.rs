//! What a comparison run measures (`netlet-bench compare`'s options), shared by the
//! tables that make it up.

use std::time::Duration;

use crate::servers::Paths;

/// What to run.
#[derive(Clone)]
pub struct Options {
    pub paths: Paths,
    /// Seconds per case.
    pub duration: Duration,
    /// Connections for the idle case.
    pub idle: usize,
    /// Only rows whose name contains this.
    pub only: Option<String>,
    /// Skip the wstd column.
    pub no_wstd: bool,
    /// Skip the protocol rows (`protocols`).
    pub no_protocols: bool,
    /// Worker threads of the load generator.
    pub load_threads: usize,
}
