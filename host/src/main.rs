//! The `netlet` binary: see [`netlet::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    match netlet::cli::main() {
        Ok(code) => code,
        Err(e) => {
            // One line, no backtrace: `{:#}` prints the error and its causes.
            eprintln!("netlet: {e:#}");
            ExitCode::FAILURE
        }
    }
}
