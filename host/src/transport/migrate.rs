//! `--reuse-port` without lost connections: asking Linux to move what is queued on a
//! closing listener to another listener of its `SO_REUSEPORT` group.
//!
//! Linux hashes each new connection to one listener of the group. When a listener
//! closes, the connections queued on it (handshake done but not yet accepted, or still
//! in the handshake) are reset, unless the kernel is told to *migrate* them (Linux 5.14
//! and later): by `net.ipv4.tcp_migrate_req = 1` for the whole network namespace, or by
//! a `SO_REUSEPORT` program of the `SELECT_OR_MIGRATE` kind attached to the group. netlet
//! attaches the smallest such program: it answers "pass" without choosing, so the kernel
//! picks a listener by its usual hash, both for new connections (nothing changes) and for
//! those it migrates. Loading it needs `CAP_BPF` and `CAP_NET_ADMIN`; without them only
//! the sysctl helps, and netlet says so.
//!
//! netlet also accepts everything queued just before it closes a listener (see
//! `shard::swap`), which leaves only connections that arrive in the microseconds between
//! that and the close.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// How a closing listener's queued connections are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Migration {
    /// netlet's program is attached to the group.
    Program,
    /// `net.ipv4.tcp_migrate_req` is 1.
    Sysctl,
    /// Neither: why the program could not be attached.
    Off(String),
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TYPE_SK_REUSEPORT: u32 = 21;
const BPF_SK_REUSEPORT_SELECT_OR_MIGRATE: u32 = 40;
const SO_ATTACH_REUSEPORT_EBPF: libc::c_int = 52;

/// `union bpf_attr` as `BPF_PROG_LOAD` reads it, up to the last field used; the kernel
/// takes the rest as zero.
#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `r0 = SK_PASS (1); exit`: eBPF instructions (opcode, registers, offset, immediate).
const PASS: [u64; 2] = [
    // BPF_ALU64 | BPF_MOV | BPF_K, dst r0, imm 1.
    0xb7 | (1 << 32),
    // BPF_JMP | BPF_EXIT.
    0x95,
];

/// Makes `socket`'s `SO_REUSEPORT` group migrate a closing listener's queue, if the
/// kernel lets this process do so; otherwise reports whether the sysctl does it.
pub fn enable(socket: &impl AsRawFd) -> Migration {
    match attach(socket) {
        Ok(()) => Migration::Program,
        Err(e) => {
            let sysctl = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req")
                .is_ok_and(|v| v.trim() == "1");
            if sysctl {
                Migration::Sysctl
            } else {
                Migration::Off(match e.raw_os_error() {
                    Some(libc::EPERM) => {
                        "loading its migration program needs CAP_BPF and CAP_NET_ADMIN".into()
                    }
                    _ => format!("its migration program was refused: {e}"),
                })
            }
        }
    }
}

fn attach(socket: &impl AsRawFd) -> io::Result<()> {
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..13].copy_from_slice(b"netlet_reuse\0");
    let attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_SK_REUSEPORT,
        insn_cnt: PASS.len() as u32,
        insns: PASS.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: BPF_SK_REUSEPORT_SELECT_OR_MIGRATE,
    };
    // SAFETY: `attr` is a valid `bpf_attr` prefix of the size passed, and the
    // instructions and licence it points to outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoad,
            std::mem::size_of::<ProgLoad>() as u32,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    let program = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let raw = program.as_raw_fd();
    // SAFETY: setsockopt with a pointer to an int of the length given. The group keeps
    // its own reference to the program, so ours closes when `program` drops.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_EBPF,
            &raw as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_is_attached_where_the_kernel_allows_it() {
        let listener = crate::transport::tcp::bind("127.0.0.1:0".parse().unwrap(), true).unwrap();
        let got = enable(&listener);
        // As root (CI, this project's machines) the program loads; elsewhere the reason
        // is named.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(got, Migration::Program);
        } else if let Migration::Off(why) = got {
            assert!(why.contains("CAP_BPF"), "{why}");
        }
    }
}
