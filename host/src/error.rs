//! Turning OS errors into what the guest sees: a WIT `error-code` and Node's message
//! text (`read ECONNRESET`, `connect ECONNREFUSED 127.0.0.1:9`).

use std::io;

use crate::bindings::ErrorCode;
use crate::events::HostError;

/// The WIT code for an OS error.
pub fn error_code(e: &io::Error) -> ErrorCode {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => ErrorCode::AccessDenied,
        Some(libc::EADDRINUSE) => ErrorCode::AddressInUse,
        Some(libc::EADDRNOTAVAIL) => ErrorCode::AddressNotAvailable,
        Some(libc::ECONNREFUSED) => ErrorCode::ConnectionRefused,
        Some(libc::ECONNRESET) => ErrorCode::ConnectionReset,
        Some(libc::ECONNABORTED) => ErrorCode::ConnectionAborted,
        Some(libc::EPIPE) => ErrorCode::BrokenPipe,
        Some(libc::ETIMEDOUT) => ErrorCode::TimedOut,
        Some(libc::EHOSTUNREACH) | Some(libc::ENETUNREACH) | Some(libc::ENETDOWN) => {
            ErrorCode::HostUnreachable
        }
        Some(libc::EMSGSIZE) => ErrorCode::MessageTooLarge,
        Some(libc::EINVAL) | Some(libc::EAFNOSUPPORT) => ErrorCode::InvalidArgument,
        _ => match e.kind() {
            io::ErrorKind::PermissionDenied => ErrorCode::AccessDenied,
            io::ErrorKind::ConnectionRefused => ErrorCode::ConnectionRefused,
            io::ErrorKind::ConnectionReset => ErrorCode::ConnectionReset,
            io::ErrorKind::BrokenPipe => ErrorCode::BrokenPipe,
            io::ErrorKind::TimedOut => ErrorCode::TimedOut,
            io::ErrorKind::InvalidInput => ErrorCode::InvalidArgument,
            io::ErrorKind::NotFound => ErrorCode::NameNotFound,
            _ => ErrorCode::Unknown,
        },
    }
}

/// Node's name for an error (`ECONNRESET`), falling back to the OS's description.
pub fn errno_name(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EACCES) => "EACCES",
        Some(libc::EPERM) => "EPERM",
        Some(libc::EADDRINUSE) => "EADDRINUSE",
        Some(libc::EADDRNOTAVAIL) => "EADDRNOTAVAIL",
        Some(libc::ECONNREFUSED) => "ECONNREFUSED",
        Some(libc::ECONNRESET) => "ECONNRESET",
        Some(libc::ECONNABORTED) => "ECONNABORTED",
        Some(libc::EPIPE) => "EPIPE",
        Some(libc::ETIMEDOUT) => "ETIMEDOUT",
        Some(libc::EHOSTUNREACH) => "EHOSTUNREACH",
        Some(libc::ENETUNREACH) => "ENETUNREACH",
        Some(libc::ENETDOWN) => "ENETDOWN",
        Some(libc::EMSGSIZE) => "EMSGSIZE",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EAFNOSUPPORT) => "EAFNOSUPPORT",
        Some(libc::EMFILE) => "EMFILE",
        Some(libc::ENFILE) => "ENFILE",
        Some(libc::ENOBUFS) => "ENOBUFS",
        _ if e.kind() == io::ErrorKind::NotFound => "ENOTFOUND",
        _ => return e.to_string(),
    };
    name.to_string()
}

/// The error the guest sees for an OS error during `op` (`read`, `write`, `connect`,
/// ...), optionally naming the address involved, as Node's messages do.
pub fn error_info(e: &io::Error, op: &str, target: Option<&str>) -> HostError {
    let mut message = format!("{op} {}", errno_name(e));
    if let Some(target) = target {
        message.push(' ');
        message.push_str(target);
    }
    HostError {
        code: error_code(e),
        message,
    }
}

/// The error the guest sees for a condition the host itself detected.
pub fn host_error(code: ErrorCode, message: impl Into<String>) -> HostError {
    HostError {
        code,
        message: message.into(),
    }
}
