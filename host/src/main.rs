//! The `netlet` binary: see [`netlet::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = match netlet::cli::main() {
        Ok(code) => code,
        Err(e) => {
            // One line, no backtrace: `{:#}` prints the error and its causes.
            netlet::log::to_stderr(format!("netlet: {e:#}\n").into_bytes());
            ExitCode::FAILURE
        }
    };
    // Lines still queued for stderr go out before the process ends.
    netlet::log::flush(std::time::Duration::from_secs(2));
    code
}
