//! Close codes (RFC 6455 section 7.4.1): the registered ones, which codes may be sent
//! in a close frame, and which of them fail a connection rather than end it.

/// The purpose is fulfilled.
pub const NORMAL: u16 = 1000;
/// Going away (a server shutting down, a page left).
pub const GOING_AWAY: u16 = 1001;
/// A protocol error.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A data type that cannot be accepted.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// No code was in the close frame (never sent).
pub const NO_STATUS: u16 = 1005;
/// The connection closed without a close frame (never sent).
pub const ABNORMAL: u16 = 1006;
/// Text that is not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// A policy was violated.
pub const POLICY_VIOLATION: u16 = 1008;
/// A message too big to process.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The server met an unexpected condition.
pub const INTERNAL_ERROR: u16 = 1011;
/// Overloaded: try again later.
pub const TRY_AGAIN_LATER: u16 = 1013;

/// Whether `code` may be sent in a close frame (and so be received in one): 1000–1003,
/// 1007–1014, 3000–4999 (the registered codes that are not reserved for "no code"
/// (1005), "abnormal" (1006), 1004 and 1015; and the codes for libraries and
/// applications). The same set as Node's `ws`.
pub fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Whether closing with `code` fails the connection (sends the peer away for what it
/// did or cannot keep up with), rather than ending it: its unsent backlog is dropped
/// and the socket goes after
/// [`WsOptions::fail_close_timeout`](crate::ws::WsOptions::fail_close_timeout).
pub fn fails_connection(code: u16) -> bool {
    matches!(
        code,
        PROTOCOL_ERROR
            | UNSUPPORTED_DATA
            | INVALID_PAYLOAD
            | POLICY_VIOLATION
            | MESSAGE_TOO_BIG
            | INTERNAL_ERROR
            | TRY_AGAIN_LATER
    )
}

/// A close frame's payload: `code` then `reason`, cut to the 123 bytes a control
/// frame leaves it (on a character boundary); empty without a code.
pub fn close_payload(code: Option<u16>, reason: &str) -> Vec<u8> {
    let Some(code) = code else {
        return Vec::new();
    };
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_the_code_and_a_reason_cut_on_a_character() {
        assert_eq!(close_payload(None, ""), b"");
        assert_eq!(close_payload(Some(1000), "ok"), [0x03, 0xE8, b'o', b'k']);
        let long = "é".repeat(100);
        let p = close_payload(Some(4000), &long);
        assert_eq!(p.len(), 2 + 122);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
    }

    #[test]
    fn which_codes_may_be_sent_and_which_fail_a_connection() {
        for c in [1000, 1003, 1007, 1014, 3000, 4999] {
            assert!(valid_close_code(c), "{c}");
        }
        for c in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(!valid_close_code(c), "{c}");
        }
        assert!(!fails_connection(NORMAL) && !fails_connection(GOING_AWAY));
        assert!(fails_connection(PROTOCOL_ERROR) && fails_connection(TRY_AGAIN_LATER));
    }
}
