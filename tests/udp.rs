//! UDP with real sockets: sizes up to the IPv4 maximum byte-exact, `rinfo`, socket
//! options, IPv6, outbound sends under the allow-list.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;

fn client(v6: bool) -> UdpSocket {
    let s = UdpSocket::bind(if v6 { "[::1]:0" } else { "127.0.0.1:0" }).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

fn ask(s: &UdpSocket, to: SocketAddr, msg: &[u8]) -> Vec<u8> {
    s.send_to(msg, to).unwrap();
    let mut buf = vec![0; 70_000];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    assert_eq!(from, to);
    buf.truncate(n);
    buf
}

#[test]
fn echo_of_1_1400_and_65507_bytes_is_byte_exact() {
    let netlet = Netlet::run("udp-echo", &["--udp", "127.0.0.1:0"]);
    let c = client(false);
    for size in [1, 1400, 65_507] {
        let msg = random_bytes(size, size as u64);
        assert_eq!(ask(&c, netlet.udp[0], &msg), msg, "{size} bytes");
    }
}

#[test]
fn rinfo_describes_the_sender() {
    let netlet = Netlet::run("scripted", &["--udp", "127.0.0.1:0"]);
    let c = client(false);
    let reply = String::from_utf8(ask(&c, netlet.udp[0], b"info")).unwrap();
    let port = c.local_addr().unwrap().port();
    assert_eq!(
        reply,
        format!(
            "info address={} from=127.0.0.1:{port} family=IPv4 size=4",
            netlet.udp[0]
        )
    );
    netlet
        .stderr
        .wait_for(&format!("ev message 1 4 127.0.0.1:{port}"), WAIT);
}

#[test]
fn ipv6_socket_and_rinfo() {
    let netlet = Netlet::run("scripted", &["--udp", "[::1]:0"]);
    let c = client(true);
    let reply = String::from_utf8(ask(&c, netlet.udp[0], b"info")).unwrap();
    let port = c.local_addr().unwrap().port();
    assert!(
        reply.contains(&format!("from=::1:{port} family=IPv6 size=4")),
        "{reply}"
    );
    let big = ask(&c, netlet.udp[0], b"big 60000");
    assert_eq!(big.len(), 60_000);
}

#[test]
fn a_reply_larger_than_the_ipv4_maximum_is_refused_not_a_trap() {
    let netlet = Netlet::run("scripted", &["--udp", "127.0.0.1:0"]);
    let c = client(false);
    assert_eq!(ask(&c, netlet.udp[0], b"big 65507").len(), 65_507);
    c.send_to(b"big 65508", netlet.udp[0]).unwrap();
    netlet
        .stderr
        .wait_for("ev udp-reply-failed 1 EMSGSIZE", WAIT);
    // Still serving.
    assert_eq!(ask(&c, netlet.udp[0], b"echo ok"), b"ok");
}

#[test]
fn socket_options_are_applied() {
    let netlet = Netlet::run("scripted", &["--udp", "127.0.0.1:0"]);
    let c = client(false);
    let ask_str = |m: &str| String::from_utf8(ask(&c, netlet.udp[0], m.as_bytes())).unwrap();
    assert_eq!(ask_str("ttl 64"), "ok ttl");
    assert_eq!(ask_str("ttl 0"), "err ttl ERR_INVALID_ARG_VALUE");
    assert_eq!(ask_str("mttl 4"), "ok mttl");
    assert_eq!(ask_str("mloop 0"), "ok mloop");
    assert_eq!(ask_str("broadcast 1"), "ok broadcast");
    // Linux doubles SO_RCVBUF / SO_SNDBUF for bookkeeping, as Node's getters show.
    assert_eq!(ask_str("rcvbuf 65536"), "rcvbuf 131072");
    assert_eq!(ask_str("sndbuf 65536"), "sndbuf 131072");
    assert_eq!(ask_str("join 239.1.2.3"), "ok join");
    assert_eq!(ask_str("leave 239.1.2.3"), "ok leave");
    assert_eq!(ask_str("join 10.0.0.1"), "err join ERR_INVALID_ARG_VALUE");
}

#[test]
fn outbound_send_needs_permission_but_replies_do_not() {
    let target = client(false);
    let target_addr = target.local_addr().unwrap();
    // Not allowed: refused at once, logged, and nothing arrives.
    let netlet = Netlet::run("scripted", &["--udp", "127.0.0.1:0"]);
    let c = client(false);
    let reply = ask(
        &c,
        netlet.udp[0],
        format!("send 127.0.0.1 {} hi", target_addr.port()).as_bytes(),
    );
    assert_eq!(String::from_utf8(reply).unwrap(), "err send EACCES");
    netlet
        .stderr
        .wait_for(&format!("denied UDP send to {target_addr}"), WAIT);
    target
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0; 16];
    assert!(
        target.recv_from(&mut buf).is_err(),
        "a denied datagram arrived"
    );
    drop(netlet);

    let allow = target_addr.to_string();
    let netlet = Netlet::run("scripted", &["--udp", "127.0.0.1:0", "--allow", &allow]);
    let reply = ask(
        &c,
        netlet.udp[0],
        format!("send 127.0.0.1 {} hi", target_addr.port()).as_bytes(),
    );
    assert_eq!(String::from_utf8(reply).unwrap(), "ok send");
    target.set_read_timeout(Some(WAIT)).unwrap();
    let (n, from) = target.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi");
    assert_eq!(from, netlet.udp[0]);
}

#[test]
fn a_guest_created_socket_sends_and_gets_the_reply() {
    // A UDP server in the test; the guest creates a socket, sends, relays the reply.
    let server = client(false);
    let server_addr = server.local_addr().unwrap();
    let netlet = Netlet::run(
        "scripted",
        &["--tcp", "127.0.0.1:0", "--allow", &server_addr.to_string()],
    );
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(
        command(
            &mut c,
            &format!("udp localhost {} ping", server_addr.port())
        ),
        "udp sent"
    );
    let mut buf = [0; 64];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    server.send_to(b"pong", from).unwrap();
    assert_eq!(
        read_line(&mut c),
        format!("udp reply pong from {server_addr}")
    );
    netlet.stderr.wait_for("ev udp-listening", WAIT);
    netlet.stderr.wait_for("ev udp-close", WAIT);
}

#[test]
fn connected_mode_sends_receives_only_from_its_peer_and_disconnects() {
    let peer = client(false);
    let stranger = client(false);
    let peer_addr = peer.local_addr().unwrap();
    let netlet = Netlet::run(
        "scripted",
        &["--tcp", "127.0.0.1:0", "--allow", &peer_addr.to_string()],
    );
    let mut c = connect(netlet.tcp[0]);
    assert_eq!(
        command(&mut c, &format!("uconnect 127.0.0.1 {}", peer_addr.port())),
        "uconnect ok"
    );
    assert_eq!(read_line(&mut c), format!("udp connect {peer_addr}"));
    assert_eq!(command(&mut c, "uremote"), format!("uremote {peer_addr}"));
    assert_eq!(command(&mut c, "usend hello"), "usend ok");
    let mut buf = [0; 64];
    let (n, guest_addr) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    // Only the connected peer's datagrams are delivered.
    stranger.send_to(b"intruder", guest_addr).unwrap();
    peer.send_to(b"welcome", guest_addr).unwrap();
    assert_eq!(
        read_line(&mut c),
        format!("udp creply welcome from {peer_addr}")
    );
    assert_eq!(command(&mut c, "udisconnect"), "udisconnect ok");
    assert_eq!(command(&mut c, "uremote"), "uremote err ERR_SOCKET_CLOSED");
    assert_eq!(command(&mut c, "usend x"), "usend failed ERR_SOCKET_CLOSED");
    assert!(!netlet.stderr.contains("intruder"));
}

#[test]
fn bind_claims_the_operators_socket_by_its_code_port() {
    // The code binds 41234; the operator binds that at a free port.
    let netlet = Netlet::run(
        "scripted",
        &["--udp", "127.0.0.1:0=41234", "--", "bind=41234"],
    );
    let addr = netlet.udp[0];
    let line = netlet.stderr.wait_for("ev init-bind ok ", WAIT);
    assert!(line.ends_with(&format!(" {addr}")), "{line}");
    let id: u32 = line.split_whitespace().nth(4).unwrap().parse().unwrap();
    // Its datagrams reach the guest's own socket, which answers from the operator's.
    let c = client(false);
    let reply = String::from_utf8(ask(&c, addr, b"info")).unwrap();
    assert!(
        reply.starts_with(&format!("info address={addr} ")),
        "{reply}"
    );
    netlet.stderr.wait_for(&format!("ev message {id} 4 "), WAIT);
    // One `listening`: the guest socket's; the operator's is not announced apart.
    let log = netlet.stderr.text();
    let listening: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ev udp-listening "))
        .collect();
    assert_eq!(listening.len(), 1, "{log}");
    assert!(
        listening[0].contains(&format!("ev udp-listening {id} {addr}")),
        "{log}"
    );
}

#[test]
fn bind_to_a_port_nobody_configured_is_refused() {
    let netlet = Netlet::run("scripted", &["--udp", "127.0.0.1:0", "--", "bind=41234"]);
    netlet.stderr.wait_for("ev init-bind err EACCES", WAIT);
}
