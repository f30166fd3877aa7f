//! Errors as handlers see them: a code (Node's `err.code`) and a message.

use std::fmt;

use crate::bindings::netlet::net::types::ErrorInfo;

/// Why an operation failed; each case stands for a Node.js `err.code`
/// (see [`ErrorCode::node_code`]).
pub use crate::bindings::netlet::net::types::ErrorCode;

/// An error from the host: returned by a method that failed at once, or carried by an
/// `error` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
}

impl Error {
    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Node's message text, e.g. `read ECONNRESET`.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn other(code: ErrorCode, message: String) -> Self {
        Self { code, message }
    }

    pub(crate) fn from_code(code: ErrorCode, what: &str) -> Self {
        Self {
            code,
            message: format!("{what} {}", code.node_code()),
        }
    }
}

impl From<ErrorInfo> for Error {
    fn from(info: ErrorInfo) -> Self {
        Self {
            code: info.code,
            message: info.message,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl ErrorCode {
    /// The Node.js `err.code` string this code stands for, e.g. `"ECONNRESET"`.
    pub fn node_code(self) -> &'static str {
        match self {
            ErrorCode::AccessDenied => "EACCES",
            ErrorCode::InvalidArgument => "ERR_INVALID_ARG_VALUE",
            ErrorCode::InvalidState => "ERR_SOCKET_CLOSED",
            ErrorCode::AddressInUse => "EADDRINUSE",
            ErrorCode::AddressNotAvailable => "EADDRNOTAVAIL",
            ErrorCode::ConnectionRefused => "ECONNREFUSED",
            ErrorCode::ConnectionReset => "ECONNRESET",
            ErrorCode::ConnectionAborted => "ECONNABORTED",
            ErrorCode::BrokenPipe => "EPIPE",
            ErrorCode::TimedOut => "ETIMEDOUT",
            ErrorCode::HostUnreachable => "EHOSTUNREACH",
            ErrorCode::NameNotFound => "ENOTFOUND",
            ErrorCode::MessageTooLarge => "EMSGSIZE",
            ErrorCode::WouldExceedLimit => "ERR_NETLET_LIMIT",
            ErrorCode::TlsHandshakeFailed => "ERR_TLS_HANDSHAKE",
            ErrorCode::Unknown => "UNKNOWN",
        }
    }
}
