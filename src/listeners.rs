//! Who listens on a TCP port of this machine: the LISTEN sockets of bgflow's network
//! namespace (`/proc/net/tcp` and `/proc/net/tcp6`) and the processes that hold them (a
//! `socket:[INODE]` link in `/proc/PID/fd`). A ready or health probe passes only when the
//! socket that answered it is the service's (guarantee 10), and `plan`/`run` name the
//! process that already holds a service's port.
//!
//! Which socket takes a connection is the kernel's choice, repeated here: a socket bound
//! to the exact address (an IPv6 socket bound to `::ffff:a.b.c.d` counts for IPv4) before
//! one bound to the wildcard, and for IPv4 a `0.0.0.0` socket before a dual-stack `::`
//! one. A connection to `0.0.0.0` or `::` goes to the loopback address.
//!
//! Only hosts that name this machine without a lookup are judged before a connection
//! (an IP literal of this machine, `localhost`); after one, an address is this machine's when it is a
//! loopback address or the connection's own source address (the kernel picks the
//! destination itself as the source of a local connection).

use std::collections::HashSet;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// A TCP socket in the LISTEN state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: IpAddr,
    pub port: u16,
    pub inode: u64,
    /// The socket's owner, from the table (shown when its process cannot be seen).
    pub uid: u32,
}

/// Every listening TCP socket of this network namespace. A missing table (no IPv6) is
/// an empty one.
pub fn all() -> Vec<Listener> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        if let Ok(text) = fs::read_to_string(file) {
            out.extend(text.lines().skip(1).filter_map(|l| parse_line(l, v6)));
        }
    }
    out
}

/// One line of /proc/net/tcp{,6}, if it is a LISTEN socket (state `0A`).
fn parse_line(line: &str, v6: bool) -> Option<Listener> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.get(3) != Some(&"0A") {
        return None;
    }
    let (addr, port) = fields.get(1)?.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // Each 32-bit word is printed as a number in the machine's byte order; its bytes in
    // memory are the address's bytes in network order.
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_ne_bytes);
    let addr = if v6 {
        if addr.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for i in 0..4 {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::from(word(addr)?))
    };
    Some(Listener {
        addr,
        port,
        uid: fields.get(7)?.parse().ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// `host:port` of an `http://host[:port]/...` URL: (address, host as written, path).
pub fn split_http_url(url: &str) -> Result<(String, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}`: only http:// URLs can be probed"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(h, p)| p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']')))
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((addr, authority.to_owned(), path.to_owned()))
}

/// The `host:port` an `http` or `tcp` probe connects to.
pub fn probe_address(http: Option<&str>, tcp: Option<&str>) -> Option<String> {
    match (http, tcp) {
        (Some(url), _) => split_http_url(url).ok().map(|(addr, _, _)| addr),
        (None, Some(addr)) => Some(addr.to_owned()),
        (None, None) => None,
    }
}

/// The addresses of this machine that `host:port` names, told without a DNS lookup: an
/// IP literal, or `localhost` (from the hosts file, else both loopback addresses).
/// `None` for any other name, or no port.
pub fn local_targets(host_port: &str) -> Option<(Vec<IpAddr>, u16)> {
    let (host, port) = host_port.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return is_this_machine(ip).then(|| (vec![ip], port));
    }
    let name = host.to_ascii_lowercase();
    if name != "localhost" && !name.ends_with(".localhost") {
        return None;
    }
    let mut ips: Vec<IpAddr> = (name.as_str(), port)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).filter(IpAddr::is_loopback).collect())
        .unwrap_or_default();
    if ips.is_empty() {
        ips = vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
    }
    ips.dedup();
    Some((ips, port))
}

/// Whether `ip` is an address of this machine: loopback, the wildcard, or one a socket
/// can be bound to (binding a UDP socket sends nothing).
fn is_this_machine(ip: IpAddr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Whether a connection from `local` to `peer` stays on this machine.
pub fn is_local_connection(local: SocketAddr, peer: SocketAddr) -> bool {
    let peer = peer.ip().to_canonical();
    peer.is_loopback() || peer == local.ip().to_canonical()
}

/// The sockets that take a connection to `ip:port`, as the kernel picks them (several
/// only when they share the port with SO_REUSEPORT).
pub fn answering(all: &[Listener], ip: IpAddr, port: u16) -> Vec<&Listener> {
    let ip = match ip.to_canonical() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    let on_port = || all.iter().filter(move |l| l.port == port);
    let levels: Vec<Vec<&Listener>> = match ip {
        IpAddr::V4(a) => vec![
            on_port()
                .filter(|l| l.addr == IpAddr::V4(a) || l.addr == IpAddr::V6(a.to_ipv6_mapped()))
                .collect(),
            on_port()
                .filter(|l| l.addr == IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                .collect(),
            on_port()
                .filter(|l| l.addr == IpAddr::V6(Ipv6Addr::UNSPECIFIED))
                .collect(),
        ],
        IpAddr::V6(a) => vec![
            on_port().filter(|l| l.addr == IpAddr::V6(a)).collect(),
            on_port()
                .filter(|l| l.addr == IpAddr::V6(Ipv6Addr::UNSPECIFIED))
                .collect(),
        ],
    };
    levels
        .into_iter()
        .find(|level| !level.is_empty())
        .unwrap_or_default()
}

/// The sockets that would take a connection to any of `targets` on `port`, each once.
pub fn answering_any<'a>(all: &'a [Listener], targets: &[IpAddr], port: u16) -> Vec<&'a Listener> {
    let mut seen = HashSet::new();
    targets
        .iter()
        .flat_map(|ip| answering(all, *ip, port))
        .filter(|l| seen.insert(l.inode))
        .collect()
}

/// Every process id in /proc.
pub fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// The processes among `pids` that hold one of the sockets `inodes`: (pid, inode).
pub fn holders(inodes: &[u64], pids: impl IntoIterator<Item = u32>) -> Vec<(u32, u64)> {
    let mut found = Vec::new();
    if inodes.is_empty() {
        return found;
    }
    for pid in pids {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = fs::read_link(fd.path()) else {
                continue;
            };
            let inode = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(inode) = inode.filter(|i| inodes.contains(i)) {
                found.push((pid, inode));
                // One socket is enough to name the process.
                break;
            }
        }
    }
    found
}

/// Who holds `sockets`, for people: `pid 812 (python3 -m http.server 8000)`, several
/// joined with `, `; a socket whose process bgflow cannot see (another user's, another
/// pid namespace) is named by its owner's uid. Scans every process: for messages only.
pub fn describe(sockets: &[&Listener]) -> String {
    let inodes: Vec<u64> = sockets.iter().map(|l| l.inode).collect();
    let found = holders(&inodes, all_pids());
    let mut parts: Vec<String> = found
        .iter()
        .take(3)
        .map(|&(pid, _)| {
            format!(
                "pid {pid} ({}){}",
                crate::procfs::command_line(pid),
                of_bgflow(pid)
            )
        })
        .collect();
    if found.len() > 3 {
        parts.push(format!("and {} more", found.len() - 3));
    }
    for l in sockets {
        if !found.iter().any(|&(_, i)| i == l.inode) {
            parts.push(format!(
                "a process of uid {} that bgflow cannot see (its pid is not found)",
                l.uid
            ));
        }
    }
    parts.join(", ")
}

/// `, step `web` of bgflow run abc` when the process is a step of a bgflow run.
fn of_bgflow(pid: u32) -> String {
    let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
        return String::new();
    };
    let var = |key: &str| {
        env.split(|b| *b == 0).find_map(|e| {
            e.strip_prefix(key.as_bytes())
                .and_then(|v| v.strip_prefix(b"="))
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    };
    match (var("BGFLOW_STEP"), var("BGFLOW_RUN_ID")) {
        (Some(step), Some(run)) => format!(", step `{step}` of bgflow run {run}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(addr: &str, port: u16, inode: u64) -> Listener {
        Listener {
            addr: addr.parse().expect("ip"),
            port,
            inode,
            uid: 0,
        }
    }

    #[test]
    fn table_lines_are_read_in_network_order() {
        let v4 = "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0";
        assert_eq!(
            parse_line(v4, false),
            Some(l("127.0.0.1", 8000, 4242)).map(|mut x| {
                x.uid = 1000;
                x
            })
        );
        let established = v4.replace(" 0A ", " 01 ");
        assert_eq!(parse_line(&established, false), None);
        let v6 = "   0: 00000000000000000000000001000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0";
        assert_eq!(parse_line(v6, true), Some(l("::1", 8000, 77)));
        let mapped = "   0: 0000000000000000FFFF00000100007F:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 78 1 0000000000000000 100 0 0 10 0";
        assert_eq!(
            parse_line(mapped, true),
            Some(l("::ffff:127.0.0.1", 8000, 78))
        );
    }

    #[test]
    fn the_kernel_prefers_an_exact_address_then_ipv4_wildcards() {
        let all = [
            l("0.0.0.0", 80, 1),
            l("127.0.0.1", 80, 2),
            l("::", 80, 3),
            l("::1", 81, 4),
            l("::", 82, 5),
            l("::ffff:127.0.0.1", 83, 6),
        ];
        let inodes = |v: Vec<&Listener>| v.iter().map(|l| l.inode).collect::<Vec<_>>();
        let lo4: IpAddr = "127.0.0.1".parse().expect("ip");
        let lo6: IpAddr = "::1".parse().expect("ip");
        assert_eq!(inodes(answering(&all, lo4, 80)), [2]);
        assert_eq!(
            inodes(answering(&all, "10.0.0.1".parse().expect("ip"), 80)),
            [1]
        );
        assert_eq!(inodes(answering(&all, lo6, 80)), [3]);
        assert_eq!(inodes(answering(&all, lo4, 81)), Vec::<u64>::new());
        assert_eq!(inodes(answering(&all, lo6, 81)), [4]);
        assert_eq!(inodes(answering(&all, lo4, 82)), [5], "dual-stack ::");
        assert_eq!(inodes(answering(&all, lo4, 83)), [6], "v4-mapped");
        assert_eq!(
            inodes(answering(&all, "0.0.0.0".parse().expect("ip"), 80)),
            [2],
            "0.0.0.0 is loopback"
        );
        assert_eq!(inodes(answering_any(&all, &[lo4, lo6], 81)), [4]);
    }

    #[test]
    fn probe_hosts_that_name_this_machine() {
        assert_eq!(
            local_targets("127.0.0.1:8000"),
            Some((vec!["127.0.0.1".parse().expect("ip")], 8000))
        );
        assert_eq!(
            local_targets("[::1]:8000"),
            Some((vec!["::1".parse().expect("ip")], 8000))
        );
        let (ips, port) = local_targets("localhost:9").expect("localhost");
        assert_eq!(port, 9);
        assert!(
            !ips.is_empty() && ips.iter().all(IpAddr::is_loopback),
            "{ips:?}"
        );
        assert_eq!(local_targets("example.com:80"), None);
        assert_eq!(
            local_targets("192.0.2.1:80"),
            None,
            "another machine's address"
        );
        assert!(local_targets("0.0.0.0:80").is_some());
        assert_eq!(local_targets("127.0.0.1"), None);
        assert_eq!(
            probe_address(Some("http://[::1]/x"), None).as_deref(),
            Some("[::1]:80")
        );
        assert_eq!(
            probe_address(Some("http://[::1]:8080/x"), None).as_deref(),
            Some("[::1]:8080")
        );
        assert_eq!(
            probe_address(None, Some("localhost:1")).as_deref(),
            Some("localhost:1")
        );
    }

    #[test]
    fn a_real_listener_is_found_with_its_process() {
        let sock = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = sock.local_addr().expect("addr").port();
        let table = all();
        let found = answering(&table, "127.0.0.1".parse().expect("ip"), port);
        assert_eq!(found.len(), 1, "{table:?}");
        let me = std::process::id();
        assert_eq!(holders(&[found[0].inode], [me]), [(me, found[0].inode)]);
        assert!(describe(&found).starts_with(&format!("pid {me} (")));
        let inode = found[0].inode;
        drop(sock);
        // Another process may bind the freed port at once (tests run side by side), so
        // what is checked is that this socket is gone. A child another test forks in this
        // process may hold the socket until its `execve` closes it: poll with a deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let table = all();
            let after = answering(&table, "127.0.0.1".parse().expect("ip"), port);
            if after.iter().all(|l| l.inode != inode) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{after:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn a_socket_whose_process_cannot_be_found_is_named_by_its_uid() {
        let ghost = Listener {
            uid: 4321,
            ..l("127.0.0.1", 1, u64::MAX)
        };
        assert_eq!(
            describe(&[&ghost]),
            "a process of uid 4321 that bgflow cannot see (its pid is not found)"
        );
    }
}
