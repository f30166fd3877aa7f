//! The time the host schedules by: the real clock, or a virtual one that the testing
//! harness moves forward (`Harness::advance`), so timers and socket timeouts fire
//! deterministically. CPU deadlines (`--event-timeout`) always use real time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A clock; cheap to clone.
#[derive(Clone, Default)]
pub enum Clock {
    #[default]
    Real,
    Virtual(Arc<VirtualClock>),
}

/// A clock that only moves when told to.
pub struct VirtualClock {
    base: Instant,
    offset: Mutex<Duration>,
}

impl Clock {
    /// A virtual clock starting now.
    pub fn new_virtual() -> Self {
        Clock::Virtual(Arc::new(VirtualClock {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        }))
    }

    pub fn now(&self) -> Instant {
        match self {
            Clock::Real => Instant::now(),
            Clock::Virtual(v) => v.base + *v.offset.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a virtual clock forward (a real clock ignores it).
    pub fn advance(&self, by: Duration) {
        if let Clock::Virtual(v) = self {
            *v.offset.lock().unwrap_or_else(|p| p.into_inner()) += by;
        }
    }
}
