//! What happens on a WebSocket: [`Message`]s, [`WsEvent`]s (as a client's callback
//! gets them) and [`WsError`]s.

use super::protocol::Violation;
use crate::error::Error;

/// A message: Node's `ws` `message` event's data and its `isBinary`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message (checked to be UTF-8).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The payload's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it is binary (Node's `isBinary`).
    pub fn is_binary(&self) -> bool {
        matches!(self, Message::Binary(_))
    }
}

/// Why a WebSocket reports an error (Node's `ws` `error` event); `on_close` follows.
#[derive(Clone, Debug)]
pub enum WsError {
    /// The peer broke the protocol: the connection was failed with the code.
    Protocol(Violation),
    /// A client's handshake failed (refused, not a WebSocket server, a wrong accept
    /// key).
    Handshake(String),
    /// The socket failed (reset, refused).
    Socket(Error),
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WsError::Protocol(v) => write!(f, "{v}"),
            WsError::Handshake(m) => write!(f, "handshake failed: {m}"),
            WsError::Socket(e) => write!(f, "{e}"),
        }
    }
}

/// What happens on a WebSocket, as the callback given to [`connect`](super::connect)
/// receives it (a [`WsHandler`](super::WsHandler) gets one method per case:
/// [`WsEvent::deliver`]).
#[derive(Debug)]
pub enum WsEvent {
    /// Node's `open`: a client's handshake succeeded (a server's connections are open
    /// from the start, and get it too).
    Open,
    /// Node's `message`.
    Message(Message),
    /// Node's `ping`: the SDK has answered it already.
    Ping(Vec<u8>),
    /// Node's `pong`.
    Pong(Vec<u8>),
    /// Everything sent is out after a send returned false.
    Drain,
    /// Node's `error`; `Close` follows.
    Error(WsError),
    /// Node's `close`: the socket is closed. `code` is the peer's close code (1005 if
    /// its close frame had none), the one we failed the connection with, or 1006 if no
    /// close frame came.
    Close {
        /// The close code.
        code: u16,
        /// The reason.
        reason: String,
    },
}
