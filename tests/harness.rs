//! The in-memory harness (`netlet::testing::Harness`) against every example and the
//! test guests: the behaviours the real-socket tests check, now without a network and
//! with virtual time. Plus the real-socket helper (`netlet::testing::Server`).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::guest;
use netlet::config::Isolation;
use netlet::testing::{Harness, HarnessError};

const GREETING: &str = "欢迎光临《深入浅出Node.js》示例：\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn hello_in_memory() -> Result<(), HarnessError> {
    let h = Harness::load(guest("hello"))?;
    assert!(h.logs().contains(&"server bound".to_string()));
    let c = h.connect()?;
    assert_eq!(c.take_output(), GREETING.as_bytes());
    c.send("hi")?;
    assert_eq!(c.take_output(), "你好".as_bytes());
    c.end()?;
    assert!(h.logs().contains(&"连接断开".to_string()));
    assert!(c.is_ended() && c.is_closed() && !c.closed_with_error());
    Ok(())
}

#[test]
fn echo_backpressure_in_memory_loses_nothing() -> Result<(), HarnessError> {
    let h = Harness::load(guest("echo"))?;
    let c = h.connect()?;
    assert_eq!(c.take_output(), b"Echo server\r\n");
    // The peer stops reading: the echo's writes queue past the high-water mark, it
    // pauses (pipe semantics), and resumes on drain once the peer reads again.
    c.stop_reading(4096);
    let payload = common::random_bytes(1 << 20, 7);
    for chunk in payload.chunks(100_000) {
        c.send(chunk)?;
    }
    assert!(
        c.is_paused(),
        "the echo should pause a peer it cannot write to"
    );
    c.resume_reading()?;
    let mut got = Vec::new();
    while got.len() < payload.len() {
        let more = c.take_output();
        assert!(!more.is_empty(), "stalled after {} bytes", got.len());
        got.extend(more);
    }
    assert!(got == payload);
    assert!(!c.is_paused());
    let trace = h.trace();
    assert!(
        trace.iter().any(|l| l.contains("drain socket=")),
        "{trace:?}"
    );
    Ok(())
}

#[test]
fn echo_reset_is_an_error() -> Result<(), HarnessError> {
    let h = Harness::load(guest("echo"))?;
    let c = h.connect()?;
    let id = c.socket_id().expect("accepted");
    c.reset()?;
    assert!(c.is_closed() && c.closed_with_error());
    let trace = h.trace();
    let error = trace
        .iter()
        .position(|l| l.contains(&format!("error socket={id} read ECONNRESET")));
    let close = trace
        .iter()
        .position(|l| l.contains(&format!("close socket={id} had_error=true")));
    assert!(error.is_some() && error < close, "{trace:?}");
    Ok(())
}

#[test]
fn udp_echo_in_memory() -> Result<(), HarnessError> {
    let h = Harness::builder().tcp(0).udp(1).load(guest("udp-echo"))?;
    h.datagram(addr("127.0.0.1:5000"), "hello")?;
    let sent = h.take_datagrams();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, addr("127.0.0.1:5000"));
    assert_eq!(sent[0].from, h.udp_addr(0).unwrap());
    assert_eq!(sent[0].data, b"hello");
    assert!(
        h.logs()
            .contains(&"server got: hello from 127.0.0.1:5000".to_string())
    );
    Ok(())
}

#[test]
fn tcp_client_in_memory_accepted_and_refused() -> Result<(), HarnessError> {
    let h = Harness::builder()
        .tcp(0)
        .udp(0)
        .args(["localhost:8124"])
        .allow("localhost:8124")?
        .load(guest("tcp-client"))?;
    let pending = h.pending_connects();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].host.as_str(), pending[0].port),
        ("localhost", 8124)
    );
    let server = h.accept_connect()?;
    assert_eq!(server.take_output(), b"world!\r\n");
    server.send("hi client")?;
    assert!(server.is_ended(), "the client ends after the first data");
    server.end()?;
    let logs = h.logs();
    assert_eq!(
        logs,
        ["client connected", "hi client", "client disconnected"]
    );

    let h = Harness::builder()
        .tcp(0)
        .udp(0)
        .args(["localhost:8124"])
        .allow("localhost:8124")?
        .load(guest("tcp-client"))?;
    h.refuse_connect()?;
    assert!(
        h.logs().iter().any(|l| l.contains("connect ECONNREFUSED")),
        "{:?}",
        h.logs()
    );
    Ok(())
}

#[test]
fn outbound_policy_applies_in_memory() {
    // Without --allow the client's init fails: the harness does not start.
    let err = match Harness::builder()
        .tcp(0)
        .udp(0)
        .args(["localhost:8124"])
        .load(guest("tcp-client"))
    {
        Ok(_) => panic!("the client started without permission"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("EACCES"), "{err}");
}

#[test]
fn udp_client_in_memory() -> Result<(), HarnessError> {
    let h = Harness::builder()
        .tcp(0)
        .udp(0)
        .args(["localhost:41234", "hi", "there"])
        .allow("localhost:41234")?
        .load(guest("udp-client"))?;
    let sent = h.take_datagrams();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, addr("127.0.0.1:41234"));
    assert_eq!(sent[0].data, b"hi there");
    Ok(())
}

#[test]
fn chat_in_memory() -> Result<(), HarnessError> {
    let h = Harness::load(guest("chat"))?;
    let a = h.connect()?;
    let b = h.connect()?;
    a.send("hello\n")?;
    assert_eq!(
        b.take_output(),
        format!("[{}] hello\n", a.addr()).as_bytes()
    );
    assert!(a.take_output().is_empty());
    Ok(())
}

#[test]
fn virtual_time_drives_timers_and_socket_timeouts() -> Result<(), HarnessError> {
    let h = Harness::load(guest("scripted"))?;
    let c = h.connect()?;
    let id = c.socket_id().expect("accepted");
    c.send("timeout 300\ntimer 1000\n")?;
    assert_eq!(c.take_output(), b"ok timeout\n");
    h.advance(Duration::from_millis(299))?;
    assert!(!h.trace().iter().any(|l| l.contains("timeout socket")));
    h.advance(Duration::from_millis(1))?;
    assert!(
        h.trace()
            .iter()
            .any(|l| l.contains(&format!("timeout socket={id}"))),
        "{:?}",
        h.trace()
    );
    assert!(!c.is_closed(), "a timeout is a notice only");
    h.advance(Duration::from_millis(700))?;
    assert_eq!(c.take_output(), b"timer 1\n");
    Ok(())
}

#[test]
fn names_resolve_in_memory_never_through_dns() -> Result<(), HarnessError> {
    let h = Harness::builder()
        .allow("db.test:5353")?
        .load(guest("scripted"))?;
    h.add_host("db.test", vec!["10.0.0.7".parse().unwrap()]);
    let c = h.connect()?;
    c.send("udp db.test 5353 ping\n")?;
    assert_eq!(c.take_output(), b"udp sent\n");
    let sent = h.take_datagrams();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].to, sent[0].data.as_slice()),
        (addr("10.0.0.7:5353"), &b"ping"[..])
    );

    // A name the test did not declare is not found (at once: no resolver is asked).
    let h = Harness::builder()
        .allow("nowhere.test:5353")?
        .load(guest("scripted"))?;
    let c = h.connect()?;
    c.send("udp nowhere.test 5353 ping\n")?;
    assert_eq!(c.take_output(), b"udp sent\n");
    assert!(h.take_datagrams().is_empty());
    assert!(
        h.trace()
            .iter()
            .any(|l| l.contains("udp-error") && l.contains("ENOTFOUND")),
        "{:?}",
        h.trace()
    );
    Ok(())
}

#[test]
fn guest_end_destroy_and_server_close_are_visible() -> Result<(), HarnessError> {
    let h = Harness::load(guest("scripted"))?;
    let a = h.connect()?;
    a.send("endwith bye\n")?;
    assert_eq!(a.take_output(), b"bye\n");
    assert!(
        a.is_ended() && !a.is_closed(),
        "half-closed: the peer may still send"
    );
    a.end()?;
    assert!(a.is_closed());

    let b = h.connect()?;
    b.send("reset\n")?;
    assert!(b.was_reset());

    let c = h.connect()?;
    c.send("close-server\n")?;
    assert_eq!(c.take_output(), b"server closing\n");
    assert!(!h.listening(0));
    assert!(matches!(h.connect(), Err(HarnessError::Refused(0))));
    assert!(!h.trace().iter().any(|l| l.contains("server-close")));
    c.end()?;
    assert!(
        h.trace()
            .iter()
            .any(|l| l.contains("server-close server=1"))
    );
    Ok(())
}

#[test]
fn traps_are_values() -> Result<(), HarnessError> {
    let h = Harness::load(guest("hostile"))?;
    let healthy = h.connect()?;
    let c = h.connect()?;
    c.send("!panic\n")?;
    assert!(c.closed_with_error());
    let traps = h.traps();
    assert_eq!(traps.len(), 1);
    assert!(traps[0].message.contains("unreachable"), "{traps:?}");
    // Shared isolation: the trapped instance held both connections.
    assert!(healthy.is_closed());
    // A fresh instance serves new connections.
    let d = h.connect()?;
    d.send("again")?;
    assert_eq!(d.take_output(), b"again");
    Ok(())
}

#[test]
fn connection_isolation_in_memory() -> Result<(), HarnessError> {
    let h = Harness::builder()
        .isolation(Isolation::Connection)
        .load(guest("hostile"))?;
    let healthy = h.connect()?;
    let c = h.connect()?;
    c.send("!panic\n")?;
    assert!(c.closed_with_error());
    healthy.send("still here")?;
    assert_eq!(healthy.take_output(), b"still here");
    let d = h.connect()?;
    d.send("!count\n")?;
    assert_eq!(d.take_output(), b"count 1\n");
    Ok(())
}

#[test]
fn the_same_script_gives_the_same_trace() -> Result<(), HarnessError> {
    let run = || -> Result<Vec<String>, HarnessError> {
        let h = Harness::load(guest("chat"))?;
        let a = h.connect()?;
        let b = h.connect()?;
        a.send("one\n")?;
        b.send("two\n")?;
        a.end()?;
        h.advance(Duration::from_secs(1))?;
        Ok(h.trace())
    };
    assert_eq!(run()?, run()?);
    Ok(())
}

#[test]
fn a_component_that_is_not_a_handler_is_refused() {
    let err = Harness::load(guest("notahandler"))
        .err()
        .expect("not a handler");
    assert!(err.to_string().contains("not a netlet handler"), "{err}");
}

#[test]
fn server_helper_runs_on_real_sockets() {
    use std::io::{Read, Write};
    let server =
        netlet::testing::Server::start(guest("echo"), netlet::HandlerConfig::default()).unwrap();
    let mut c = std::net::TcpStream::connect(server.tcp[0]).unwrap();
    let mut banner = [0; 13];
    c.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"Echo server\r\n");
    c.write_all(b"real").unwrap();
    let mut back = [0; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"real");
    drop(c);
    let hello =
        netlet::testing::Server::start(guest("hello"), netlet::HandlerConfig::default()).unwrap();
    let mut c = std::net::TcpStream::connect(hello.tcp[0]).unwrap();
    let mut greeting = vec![0; GREETING.len()];
    c.read_exact(&mut greeting).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    let deadline = std::time::Instant::now() + common::WAIT;
    while !hello.logs().contains(&"连接断开".to_string()) {
        assert!(std::time::Instant::now() < deadline, "{:?}", hello.logs());
        std::thread::sleep(Duration::from_millis(10));
    }
    server.shutdown().unwrap();
}

#[test]
fn any_setting_is_set_by_its_flag_name() -> Result<(), HarnessError> {
    // `max-connections` through the settings table, as `--max-connections 1`.
    let h = Harness::builder()
        .set("max-connections", "1")?
        .load(guest("echo"))?;
    let first = h.connect()?;
    assert_eq!(first.take_output(), b"Echo server\r\n");
    let second = h.connect()?;
    assert!(
        second.is_closed(),
        "past --max-connections the connection is closed"
    );
    assert!(!first.is_closed());
    // A name no setting has, and a value a setting refuses, are errors.
    let unknown = Harness::builder().set("max-conections", "1").err().unwrap();
    assert!(
        unknown.to_string().contains("no setting --max-conections"),
        "{unknown}"
    );
    let bad = Harness::builder().set("max-memory", "lots").err().unwrap();
    assert!(bad.to_string().contains("--max-memory lots"), "{bad}");
    Ok(())
}
