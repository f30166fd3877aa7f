//! A healthy client beside a misbehaving one: round trips one at a time, each timed,
//! with p50/p99 over a window. What a round trip is depends on the protocol
//! ([`Healthy`]): a 32-byte echo by default, a Redis `PING`, an HTTP `GET`, a WebSocket
//! message, the same over TLS.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A healthy connection's p99 must stay under this while a neighbour misbehaves. The
/// aim on a quiet machine is 10 ms; the bound leaves room for a loaded 2-core CI runner
/// that also runs the load.
pub const P99_BOUND: Duration = Duration::from_millis(25);

/// What a healthy client does on its connection.
pub trait Healthy: Send + 'static {
    /// Opens the connection (with its protocol's handshake).
    fn open(&mut self, addr: SocketAddr) -> io::Result<()>;
    /// One round trip on it, checking the answer; an `Err` drops the connection and
    /// the probe opens a new one.
    fn trip(&mut self) -> io::Result<()>;
}

/// Anything readable and writable a probe talks through (a TCP or TLS stream).
pub trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

/// Connects with the probe's timeouts.
pub fn tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    c.set_nodelay(true)?;
    Ok(c)
}

/// A 32-byte ping, echoed.
#[derive(Default)]
pub struct EchoPing {
    conn: Option<TcpStream>,
}

impl Healthy for EchoPing {
    fn open(&mut self, addr: SocketAddr) -> io::Result<()> {
        self.conn = Some(tcp(addr)?);
        Ok(())
    }

    fn trip(&mut self) -> io::Result<()> {
        let c = self.conn.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        let ping = *b"healthy-probe-ping-0123456789abc";
        c.write_all(&ping)?;
        let mut back = [0u8; 32];
        c.read_exact(&mut back)?;
        assert_eq!(back, ping, "the healthy connection got other bytes back");
        Ok(())
    }
}

/// Round trips timed on a thread of their own.
pub struct Probe {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(Instant, Duration)>>>,
    failures: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl Probe {
    /// An echo ping every millisecond.
    pub fn start(addr: SocketAddr) -> Probe {
        Self::start_with(addr, EchoPing::default(), Duration::from_millis(1))
    }

    /// `client`'s round trips, one every `pause`. A connection that fails is opened
    /// again (the time that takes counts as the round trip, and as a failure).
    pub fn start_with(addr: SocketAddr, mut client: impl Healthy, pause: Duration) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, samples, failures) = (stop.clone(), samples.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut open = false;
                let mut since: Option<Instant> = None;
                while !stop.load(Ordering::SeqCst) {
                    let started = since.unwrap_or_else(Instant::now);
                    if !open {
                        if client.open(addr).is_err() {
                            failures.fetch_add(1, Ordering::SeqCst);
                            since = Some(started);
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                        open = true;
                    }
                    if client.trip().is_err() {
                        failures.fetch_add(1, Ordering::SeqCst);
                        open = false;
                        since = Some(started);
                        continue;
                    }
                    since = None;
                    samples
                        .lock()
                        .unwrap()
                        .push((Instant::now(), started.elapsed()));
                    std::thread::sleep(pause);
                }
            })
        };
        Probe {
            stop,
            samples,
            failures,
            thread,
        }
    }

    /// Waits until the probe has a few round trips (the handler serves).
    pub fn warm(&self) {
        let deadline = Instant::now() + crate::common::WAIT;
        while self.samples.lock().unwrap().len() < 50 {
            assert!(Instant::now() < deadline, "the probe got no answers");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Connections that failed so far (a round trip with no answer, a refused connect).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// p50 and p99 of the round trips completed since `from`, and how many.
    pub fn since(&self, from: Instant) -> (Duration, Duration, usize) {
        let mut rtts: Vec<Duration> = self
            .samples
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= from)
            .map(|(_, rtt)| *rtt)
            .collect();
        assert!(
            rtts.len() >= 20,
            "only {} round trips were measured",
            rtts.len()
        );
        rtts.sort();
        let pick = |q: f64| rtts[((rtts.len() - 1) as f64 * q) as usize];
        (pick(0.5), pick(0.99), rtts.len())
    }

    /// The figures since `from`, printed; asserts the p99 bound.
    pub fn report(&self, what: &str, from: Instant) -> (Duration, Duration) {
        let (p50, p99, n) = self.since(from);
        println!(
            "{what}: healthy p50 {p50:?}, p99 {p99:?} over {n} round trips, {} failures",
            self.failures()
        );
        assert!(
            p99 <= P99_BOUND,
            "{what}: the healthy connection's p99 was {p99:?} (p50 {p50:?})"
        );
        (p50, p99)
    }

    /// Measures over `window` while the fault goes on; prints the figures and asserts
    /// the p99 bound.
    pub fn watch(&self, what: &str, window: Duration) -> (Duration, Duration) {
        let from = Instant::now();
        std::thread::sleep(window);
        self.report(what, from)
    }

    pub fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the probe failed");
    }
}
