//! The keyspace: string keys to string values, each with an optional expiry time, as one
//! Redis database holding only strings.
//!
//! Times are milliseconds on the store's own clock ([`crate::clock`]). A key whose expiry
//! time has passed is gone: [`Store::lookup`] removes it when it is touched (Redis's
//! "expire on access"), and [`Store::expire_due`] removes due keys in bounded batches
//! for the expiry timer (Redis's "active expiry"). Until one of those runs, such a key
//! still counts in [`Store::len`], as in Redis's `DBSIZE`.
//!
//! Every allocation that a client's data makes (a key, a value, the table growing) is
//! fallible and reported as [`Oom`], so a full instance refuses a write with `-OOM`
//! instead of trapping.

use std::collections::{BTreeMap, HashMap};

use crate::memory;

/// An allocation for the data set failed: the command is refused with `-OOM`.
#[derive(Debug)]
pub struct Oom;

/// One key's value and expiry.
pub struct Entry {
    pub value: Box<[u8]>,
    /// `(time, sequence)`: the expiry time and the entry's key in [`Store::expiring`];
    /// `None` for a key that does not expire.
    expiry: Option<(u64, u64)>,
}

impl Entry {
    /// When the key expires, if it does.
    pub fn expires_at(&self) -> Option<u64> {
        self.expiry.map(|(at, _)| at)
    }
}

/// What `set` does with an existing key's expiry time.
#[derive(Clone, Copy, Debug)]
pub enum Ttl {
    /// The key does not expire (plain `SET`, `MSET`).
    Persist,
    /// The key expires at this time.
    At(u64),
    /// An existing key keeps its expiry (`SET ... KEEPTTL`, `INCR`).
    Keep,
}

#[derive(Default)]
pub struct Store {
    map: HashMap<Box<[u8]>, Entry>,
    /// The keys that expire, by `(time, sequence)`: the sequence makes each entry unique,
    /// so a key's entry can be removed exactly when its expiry changes.
    expiring: BTreeMap<(u64, u64), Box<[u8]>>,
    next_seq: u64,
    /// The earliest expiry time may have moved earlier since the handler last looked.
    pub expiry_changed: bool,
}

/// A copy of `bytes`, or [`Oom`] if the instance cannot allocate it.
pub fn try_copy(bytes: &[u8]) -> Result<Box<[u8]>, Oom> {
    let mut v = Vec::new();
    memory::fallible(|| v.try_reserve_exact(bytes.len())).map_err(|_| Oom)?;
    v.extend_from_slice(bytes);
    Ok(v.into_boxed_slice())
}

impl Store {
    /// Keys, including those past their expiry time that nothing removed yet.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The live entry for `key` at time `now`; an expired one is removed first.
    pub fn lookup(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let expired = self.map.get(key)?.expires_at().is_some_and(|at| now > at);
        if expired {
            self.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    /// Removes `key`; whether it was there (expired or not).
    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.map.remove(key) {
            Some(entry) => {
                if let Some(slot) = entry.expiry {
                    self.expiring.remove(&slot);
                }
                true
            }
            None => false,
        }
    }

    /// Sets `key` to `value`. The caller has checked the key is live or absent (an
    /// expired key must have been looked up, hence removed, first). On [`Oom`] nothing
    /// changed.
    pub fn set(&mut self, key: &[u8], value: Box<[u8]>, ttl: Ttl) -> Result<(), Oom> {
        self.set_prepared(key, None, value, ttl)
    }

    /// [`Store::set`], with the key's copy made beforehand (`MSET` allocates everything
    /// before it changes anything, so it is all or nothing).
    pub fn set_prepared(
        &mut self,
        key: &[u8],
        owned: Option<Box<[u8]>>,
        value: Box<[u8]>,
        ttl: Ttl,
    ) -> Result<(), Oom> {
        // Everything that can fail is allocated before anything changes.
        let expiring_key = match ttl {
            Ttl::At(_) => Some(try_copy(key)?),
            _ => None,
        };
        let entry = match self.map.get_mut(key) {
            Some(entry) => {
                entry.value = value;
                entry
            }
            None => {
                self.reserve(1)?;
                let owned = match owned {
                    Some(owned) => owned,
                    None => try_copy(key)?,
                };
                self.map.entry(owned).or_insert(Entry {
                    value,
                    expiry: None,
                })
            }
        };
        match ttl {
            Ttl::Keep => {}
            Ttl::Persist => {
                if let Some(slot) = entry.expiry.take() {
                    self.expiring.remove(&slot);
                }
            }
            Ttl::At(at) => {
                if let Some(slot) = entry.expiry.take() {
                    self.expiring.remove(&slot);
                }
                let slot = (at, self.next_seq);
                self.next_seq += 1;
                entry.expiry = Some(slot);
                if let Some(copy) = expiring_key {
                    self.expiring.insert(slot, copy);
                }
                self.expiry_changed = true;
            }
        }
        Ok(())
    }

    /// Room in the table for `n` more keys.
    pub fn reserve(&mut self, n: usize) -> Result<(), Oom> {
        memory::fallible(|| self.map.try_reserve(n)).map_err(|_| Oom)
    }

    /// Makes an existing `key` expire at `at`. On [`Oom`] nothing changed.
    pub fn set_expiry(&mut self, key: &[u8], at: u64) -> Result<(), Oom> {
        let copy = try_copy(key)?;
        let Some(entry) = self.map.get_mut(key) else {
            return Ok(());
        };
        if let Some(slot) = entry.expiry.take() {
            self.expiring.remove(&slot);
        }
        let slot = (at, self.next_seq);
        self.next_seq += 1;
        entry.expiry = Some(slot);
        self.expiring.insert(slot, copy);
        self.expiry_changed = true;
        Ok(())
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.map = HashMap::new();
        self.expiring = BTreeMap::new();
    }

    /// The earliest expiry time of any key.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiring.keys().next().map(|&(at, _)| at)
    }

    /// Removes up to `max` keys whose expiry time is before `now`; returns whether due
    /// keys remain (the caller comes back for them in a later event, so one event's work
    /// stays bounded).
    pub fn expire_due(&mut self, now: u64, max: usize) -> bool {
        for _ in 0..max {
            let Some(first) = self.expiring.first_entry() else {
                return false;
            };
            if first.key().0 >= now {
                return false;
            }
            let key = first.remove();
            self.map.remove(&key);
        }
        self.expiring.keys().next().is_some_and(|&(at, _)| at < now)
    }
}
