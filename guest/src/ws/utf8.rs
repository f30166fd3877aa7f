//! UTF-8 checked as it arrives (RFC 6455 section 8.1): a text message's bytes may be
//! split anywhere across reads and frames, and the connection fails at the first byte
//! that cannot be UTF-8 whatever follows, not once the message is whole.

/// An incremental UTF-8 validator: bytes may arrive split anywhere, and the first
/// invalid byte is reported at once (not at the end of the message).
///
/// ```
/// use netlet_guest::ws::utf8::Utf8;
///
/// let euro = "€".as_bytes(); // three bytes
/// let mut v = Utf8::default();
/// assert!(v.push(&euro[..1]) && !v.complete());
/// assert!(v.push(&euro[1..]) && v.complete());
/// // 0xE2 0x28 can start no character, whatever follows.
/// assert!(!Utf8::default().push(&[0xE2, 0x28]));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8 {
    /// Continuation bytes still due for the current character.
    need: u8,
    /// The range the next continuation byte must be in (overlong forms, surrogates
    /// and code points past U+10FFFF are excluded by narrowing it).
    lo: u8,
    hi: u8,
}

impl Utf8 {
    /// Checks the next bytes; false at the first byte that cannot be UTF-8 whatever
    /// follows.
    pub fn push(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.need == 0 {
                match std::str::from_utf8(bytes) {
                    Ok(_) => return true,
                    Err(e) if e.error_len().is_some() => return false,
                    // A character cut at the end: check its start bytewise.
                    Err(e) => bytes = &bytes[e.valid_up_to()..],
                }
            }
            let b = bytes[0];
            bytes = &bytes[1..];
            if self.need > 0 {
                if b < self.lo || b > self.hi {
                    return false;
                }
                self.need -= 1;
                self.lo = 0x80;
                self.hi = 0xBF;
                continue;
            }
            let (need, lo, hi) = match b {
                0x00..=0x7F => continue,
                0xC2..=0xDF => (1, 0x80, 0xBF),
                0xE0 => (2, 0xA0, 0xBF),
                0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
                0xED => (2, 0x80, 0x9F),
                0xF0 => (3, 0x90, 0xBF),
                0xF1..=0xF3 => (3, 0x80, 0xBF),
                0xF4 => (3, 0x80, 0x8F),
                _ => return false,
            };
            self.need = need;
            self.lo = lo;
            self.hi = hi;
        }
        true
    }

    /// Whether the bytes so far end on a whole character.
    pub fn complete(&self) -> bool {
        self.need == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_validator_agrees_with_std() {
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let len = (seed % 9) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let r = (seed >> 33) as u8;
                    // Mostly the interesting range.
                    if r & 1 == 0 { 0x80 | (r >> 2) } else { r }
                })
                .collect();
            let whole = std::str::from_utf8(&bytes).is_ok();
            let mut v = Utf8::default();
            let ok = bytes.iter().all(|b| v.push(std::slice::from_ref(b))) && v.complete();
            assert_eq!(ok, whole, "{bytes:x?}");
        }
    }
}
