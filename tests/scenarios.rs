//! `netlet test`: every example's scenario files pass, run as a user runs them; the
//! broken component's failures are reported clearly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{guest, netlet_bin};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn netlet_test(component: &Path, scenarios: &[PathBuf]) -> (bool, String) {
    let out = Command::new(netlet_bin())
        .arg("test")
        .arg(component)
        .args(scenarios)
        .env("NETLET_CACHE_DIR", common::cache_dir())
        .output()
        .expect("run netlet test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn scenarios_of(example: &str) -> Vec<PathBuf> {
    let dir = root().join("examples").join(example).join("tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario for {example}");
    files
}

#[test]
fn every_example_passes_its_scenarios() {
    for example in [
        "hello",
        "echo",
        "udp-echo",
        "tcp-client",
        "udp-client",
        "chat",
        "http-hello",
        "http-echo",
        "sse",
        "ws-echo",
        "ws-chat",
        "kv",
        "proxy",
    ] {
        let (ok, out) = netlet_test(&guest(example), &scenarios_of(example));
        assert!(ok, "{example}:\n{out}");
        assert!(out.contains(" passed, 0 failed"), "{example}:\n{out}");
        assert!(!out.contains("FAIL"), "{example}:\n{out}");
    }
}

#[test]
fn failures_of_a_broken_component_are_reported_clearly() {
    let (ok, out) = netlet_test(
        &guest("broken"),
        &[root().join("tests/scenarios/broken.toml")],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("0 passed, 4 failed"), "{out}");
    // Wrong bytes: a diff.
    assert!(out.contains("expected \"hello\\n\""), "{out}");
    assert!(out.contains("received \"HELLO\\n\""), "{out}");
    assert!(out.contains("first difference at byte 0"), "{out}");
    // A missing close.
    assert!(out.contains("connection \"c\" is not closed"), "{out}");
    // A trap: where, and the guest's own panic message.
    assert!(out.contains("the guest trapped"), "{out}");
    assert!(
        out.contains("Broken as netlet_guest::handler::NetHandler>::on_data"),
        "{out}"
    );
    assert!(out.contains("broken handler: boom"), "{out}");
    // A timeout that never fires.
    assert!(
        out.contains("FAIL") && out.contains("says idle after a second"),
        "{out}"
    );
}

#[test]
fn a_scenario_file_with_a_mistake_names_the_line() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scenarios");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("typo.toml");
    std::fs::write(
        &file,
        "[[scenario]]\nname = \"typo\"\nsteps = [\n  { conect = \"c\" },\n]\n",
    )
    .unwrap();
    let (ok, out) = netlet_test(&guest("echo"), &[file]);
    assert!(!ok);
    assert!(out.contains("line 4"), "{out}");
    assert!(out.contains("unknown field `conect`"), "{out}");
}

/// Writes a scenario file for one test.
fn scenario_file(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scenarios");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn listeners_in_a_scenario_file_are_addresses() {
    // The UDP socket is where the file says: the handler reports its address.
    let file = scenario_file(
        "udp-address.toml",
        "[handler]\ntcp = []\nudp = \"127.0.0.1:41234\"\n\
         [[scenario]]\nname = \"bound where asked\"\n\
         steps = [\n  { expect-log = \"^server listening 127.0.0.1:41234$\" },\n\
         { datagram = \"hi\", to = \"127.0.0.1:41234\" },\n\
         { expect-datagram = \"hi\", to = \"127.0.0.1:5000\" },\n]\n",
    );
    let (ok, out) = netlet_test(&guest("udp-echo"), &[file]);
    assert!(ok, "{out}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");

    // Two TCP listeners; and `tcp = []` means none.
    let file = scenario_file(
        "tcp-addresses.toml",
        "[handler]\ntcp = [\"127.0.0.1:8124\", \"127.0.0.1:1337\"]\n\
         [[scenario]]\nname = \"the second listener serves\"\n\
         steps = [\n  { connect = \"c\", listener = 1 },\n  { expect = \"Echo server\\r\\n\" },\n]\n",
    );
    let (ok, out) = netlet_test(&guest("echo"), &[file]);
    assert!(ok, "{out}");
    let file = scenario_file(
        "no-tcp.toml",
        "[handler]\ntcp = []\n\
         [[scenario]]\nname = \"nothing listens\"\nsteps = [\n  { connect = \"c\" },\n]\n",
    );
    let (ok, out) = netlet_test(&guest("echo"), &[file]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("there is no TCP listener 0 (the harness has 0)"),
        "{out}"
    );
}

#[test]
fn a_bad_handler_setting_names_the_line_and_key() {
    let file = scenario_file(
        "bad-handler.toml",
        "[handler]\ntcp = 2\n[[scenario]]\nname = \"x\"\nsteps = [{ connect = \"c\" }]\n",
    );
    let (ok, out) = netlet_test(&guest("echo"), std::slice::from_ref(&file));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "{}:2: handler.tcp: expected a string or an array of strings, found integer",
            file.display()
        )),
        "{out}"
    );
}
