//! Testing components: in memory (deterministic, virtual time) or on real sockets.

pub mod mem;
