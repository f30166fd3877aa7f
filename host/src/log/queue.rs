//! The bounded queue of lines for stderr and the thread that writes them: a shard
//! never waits on a slow reader; a line that does not fit is dropped and counted.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::QUEUE_BYTES;

/// Lines waiting for stderr, and the thread that writes them.
struct Queue {
    lines: Mutex<(VecDeque<Vec<u8>>, usize)>,
    ready: Condvar,
    /// Lines that did not fit, not yet reported.
    dropped: AtomicU64,
    /// Lines queued and not yet written, for [`flush`].
    pending: AtomicU64,
    done: Condvar,
}

fn queue() -> &'static Queue {
    static QUEUE: OnceLock<&'static Queue> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let queue: &'static Queue = Box::leak(Box::new(Queue {
            lines: Mutex::new((VecDeque::new(), 0)),
            ready: Condvar::new(),
            dropped: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            done: Condvar::new(),
        }));
        let _ = std::thread::Builder::new()
            .name("netlet-log".into())
            .spawn(move || write_lines(queue));
        queue
    })
}

/// The log thread: writes queued lines to stderr, blocking on it if it must (only this
/// thread waits), and reports dropped lines.
fn write_lines(queue: &'static Queue) {
    let lock =
        |m: &'static Mutex<(VecDeque<Vec<u8>>, usize)>| m.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let line = {
            let mut q = lock(&queue.lines);
            loop {
                if let Some(line) = q.0.pop_front() {
                    q.1 -= line.len();
                    break line;
                }
                q = queue.ready.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let mut err = std::io::stderr().lock();
        let dropped = queue.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(
                err,
                "netlet: {dropped} log line(s) dropped: stderr was not keeping up"
            );
        }
        let _ = err.write_all(&line);
        drop(err);
        let _q = lock(&queue.lines);
        queue.pending.fetch_sub(1, Ordering::Relaxed);
        queue.done.notify_all();
    }
}

/// Queues one finished line (with its newline) for stderr; never blocks. A line that
/// does not fit is dropped and counted.
pub fn to_stderr(line: Vec<u8>) {
    let queue = queue();
    let mut q = queue.lines.lock().unwrap_or_else(|p| p.into_inner());
    if q.1 + line.len() > QUEUE_BYTES {
        queue.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    q.1 += line.len();
    q.0.push_back(line);
    queue.pending.fetch_add(1, Ordering::Relaxed);
    queue.ready.notify_one();
}

/// Waits (at most `timeout`) until every queued line is written: before the process
/// exits, so its last words are not lost.
pub fn flush(timeout: Duration) {
    let queue = queue();
    let deadline = Instant::now() + timeout;
    let mut q = queue.lines.lock().unwrap_or_else(|p| p.into_inner());
    while queue.pending.load(Ordering::Relaxed) > 0 {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        q = queue
            .done
            .wait_timeout(q, deadline - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// `tracing`'s writer: each event's text goes to the queue as one line.
#[derive(Clone, Copy, Default)]
pub(super) struct QueueWriter;

/// One event being formatted.
pub(super) struct EventText(Vec<u8>);

impl Write for EventText {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventText {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            to_stderr(std::mem::take(&mut self.0));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QueueWriter {
    type Writer = EventText;

    fn make_writer(&'a self) -> Self::Writer {
        EventText(Vec::new())
    }
}
