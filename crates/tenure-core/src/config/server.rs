//! `[server]`: where `tenure serve` listens and the limits it holds every client to. Every key
//! has a default, so a config without the section serves with safe limits; each value is checked
//! like the rest of `tenure check`, with file, line and reason.
//!
//! | key | default | what |
//! | --- | --- | --- |
//! | `listen` | `127.0.0.1:8080` | the address to bind (`--listen` and `TENURE_LISTEN` override it) |
//! | `header_read_timeout` | `10s` | the longest a client may take to send a request's headers once it has sent their first byte; a slower one is disconnected |
//! | `idle_timeout` | `60s` | how long a connection may stay open with no request under way (a fresh one before its first byte, a keep-alive one between requests) |
//! | `body_timeout` | `60s` | how long a request may wait on its client (for body bytes, or for it to read the response) before the client must keep up 16 KiB/s on average; a slower one is disconnected |
//! | `max_connections` | `512` | connections served at once; at the cap a new one replaces an idle connection, or, when every connection has a request under way, only `/healthz` and `/readyz` are answered (on a few reserved slots) and anything else gets 503 |
//! | `max_client_connections` | `64` | connections served at once from one client address (an IPv6 client by its /64), at most `max_connections`; trusted proxies are exempt |
//! | `drain_timeout` | `30s` | how long shutdown waits for requests under way to finish before closing their connections |
//! | `trusted_proxies` | `[]` | addresses or CIDR blocks of reverse proxies whose `X-Forwarded-For` names the client (for the failed-authentication throttle); from any other peer the header is ignored |
//! | `max_import_bytes` | `67108864` (64 MiB) | the largest snapshot `POST /api/v1/imports` accepts; a larger one is refused 413 before it is read |
//! | `journal_retention` | `7d` | how long an ingested push (webhook delivery, events call) is kept in the push journal before the `retention` schedule deletes it; at least `11m` |

use super::Reader;
use crate::diag::Problems;
use crate::doc::{Node, Table};
use std::net::IpAddr;

/// The keys of `[server]`.
pub const SERVER_KEYS: &[&str] = &[
    "listen",
    "header_read_timeout",
    "idle_timeout",
    "body_timeout",
    "max_connections",
    "max_client_connections",
    "drain_timeout",
    "trusted_proxies",
    "max_import_bytes",
    "journal_retention",
];

/// The default `max_import_bytes`: 64 MiB, about 400,000 HR rows.
pub const DEFAULT_MAX_IMPORT_BYTES: u64 = 64 * 1024 * 1024;

/// The shortest `journal_retention`: a delivery whose `webhook-timestamp` is up to five minutes
/// ahead of the clock is accepted, and its replay is refused by the journal alone until that
/// timestamp is five minutes old (compared in whole seconds), so an entry must outlive its
/// arrival by twice the tolerance; a minute more keeps a pruned delivery's replay well past it.
pub const MIN_JOURNAL_RETENTION_SECS: u64 = 2 * 300 + 60;

/// The longest timeout accepted: an hour. Anything longer keeps dead connections around.
const MAX_TIMEOUT_SECS: u64 = 3600;

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Seconds a client may take over a request's headers, from their first byte.
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may stay open with no request under way.
    pub idle_timeout_secs: u64,
    /// Seconds a request may wait on its client before the minimum rate applies.
    pub body_timeout_secs: u64,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections served at once from one client address.
    pub max_client_connections: usize,
    /// Seconds shutdown waits for connections to finish.
    pub drain_timeout_secs: u64,
    /// The peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The largest snapshot `POST /api/v1/imports` accepts, in bytes.
    pub max_import_bytes: u64,
    /// Seconds an ingested push journal entry is kept.
    pub journal_retention_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            body_timeout_secs: 60,
            max_connections: 512,
            max_client_connections: 64,
            drain_timeout_secs: 30,
            trusted_proxies: Vec::new(),
            max_import_bytes: DEFAULT_MAX_IMPORT_BYTES,
            journal_retention_secs: 7 * 86_400,
        }
    }
}

impl ServerConfig {
    /// Whether `ip` is one of the trusted reverse proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(ip))
    }
}

/// An address block: an address and how many leading bits of it count (`10.0.0.0/8`,
/// `::1/128`; a bare address is the block of that one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// Whether `ip` is in this block. An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is
    /// compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), u128::from(u32::from(ip)), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => masked(u128::from(net), u128::from(ip), self.prefix, 128),
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `bits` bits of `a` and `b` agree.
fn masked(a: u128, b: u128, prefix: u8, bits: u32) -> bool {
    let drop = bits.saturating_sub(u32::from(prefix));
    a.checked_shr(drop).unwrap_or(0) == b.checked_shr(drop).unwrap_or(0)
}

/// Reads `[server]`; `listen` is returned beside the rest (the config keeps it as
/// `server_listen`).
pub(super) fn parse(t: &Table, p: &mut Problems<'_>) -> (Option<String>, ServerConfig) {
    let mut r = Reader::new(t, "[server]", p, SERVER_KEYS);
    let mut out = ServerConfig::default();
    let listen = r.string("listen");
    for (key, slot, min, max) in [
        ("header_read_timeout", &mut out.header_read_timeout_secs, 1, MAX_TIMEOUT_SECS),
        ("idle_timeout", &mut out.idle_timeout_secs, 1, MAX_TIMEOUT_SECS),
        ("body_timeout", &mut out.body_timeout_secs, 1, MAX_TIMEOUT_SECS),
        ("drain_timeout", &mut out.drain_timeout_secs, 1, MAX_TIMEOUT_SECS),
        ("journal_retention", &mut out.journal_retention_secs, MIN_JOURNAL_RETENTION_SECS, 3660 * 86_400),
    ] {
        if let Some(secs) = duration(&mut r, t, key, min, max) {
            *slot = secs;
        }
    }
    if let Some(n) = r.int("max_connections", 2, 1_000_000) {
        out.max_connections = usize::try_from(n).unwrap_or(out.max_connections);
    }
    if let Some(n) = r.int("max_client_connections", 1, 1_000_000) {
        out.max_client_connections = usize::try_from(n).unwrap_or(out.max_client_connections);
    }
    if let Some(n) = r.int("max_import_bytes", 1, i64::MAX) {
        out.max_import_bytes = n.unsigned_abs();
    }
    if let Some(items) = r.strings("trusted_proxies") {
        for (at, s) in items {
            match IpNet::parse(&s) {
                Some(n) => out.trusted_proxies.push(n),
                None => r.p.at(
                    at,
                    format!(
                        "`trusted_proxies` in [server] `{}` is not an address or a CIDR block like `10.0.0.0/8`",
                        crate::text::quote(&s)
                    ),
                ),
            }
        }
    }
    (listen, out)
}

/// A duration key such as `"10s"` between `min` and `max` seconds, reported on its line when it
/// is not one or out of range.
fn duration(r: &mut Reader<'_, '_, '_>, t: &Table, key: &str, min: u64, max: u64) -> Option<u64> {
    let value = r.string(key)?;
    let at = t.get(key).map_or(0, Node::start);
    match crate::date::parse_duration(&value) {
        Some(secs) if (min..=max).contains(&secs) => Some(secs),
        Some(_) => {
            r.p.at(
                at,
                format!("`{key}` in [server] `{}` is out of range: {min}s to {max}s", crate::text::quote(&value)),
            );
            None
        }
        None => {
            r.p.at(
                at,
                format!(
                    "`{key}` in [server] `{}` is not a duration like `10s`, `1m` or `7d`",
                    crate::text::quote(&value)
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's `[server]` block loads, and says the defaults this module has.
    #[test]
    fn the_readme_documents_every_server_key_with_its_default() {
        let readme = include_str!("../../../../README.md");
        let start = readme.find("```toml\n[server]\n").map(|i| i + 8).unwrap_or_default();
        let block = readme.get(start..).and_then(|b| b.split("```").next()).unwrap_or_default();
        let c = super::super::parse("README.md", block).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(c.server, ServerConfig::default());
        assert_eq!(c.server_listen, "127.0.0.1:8080");
        for key in SERVER_KEYS {
            assert!(block.contains(&format!("\n{key} = ")), "`{key}` is documented");
        }
    }

    #[test]
    fn server_keys_are_checked_on_their_line() {
        let problems = |toml: &str| -> Vec<String> {
            super::super::parse("x", toml).err().unwrap_or_default().iter().map(ToString::to_string).collect()
        };
        let cases = [
            ("header_read_timeout = \"0s\"", "not a duration"),
            ("idle_timeout = \"2h\"", "out of range: 1s to 3600s"),
            ("journal_retention = \"5m\"", "`journal_retention` in [server] `5m` is out of range: 660s"),
            ("journal_retention = \"10m\"", "`journal_retention` in [server] `10m` is out of range: 660s"),
            ("max_connections = 1", "expected 2 to 1000000"),
            ("trusted_proxies = [\"10.0.0.0/40\"]", "not an address or a CIDR block"),
        ];
        for (line, want) in cases {
            let p = problems(&format!("[server]\n{line}\n"));
            assert!(p.iter().any(|m| m.contains(want) && m.contains(":2")), "{line}: {p:?}");
        }
        let ok =
            super::super::parse("x", "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nmax_connections = 64\n");
        let server = ok.map(|c| c.server).unwrap_or_default();
        assert_eq!(server.max_connections, 64);
        assert!(server.trusts("10.1.2.3".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
    }

    #[test]
    fn address_blocks_contain_what_their_prefix_says() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.200.3.4", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("0.0.0.0/0", "192.0.2.1", true),
            ("::1", "::1", true),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "2001:db9::5", false),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("10.0.0.0/8", "2001:db8::1", false),
        ];
        for (net, ip, want) in cases {
            let n = IpNet::parse(net).unwrap_or_else(|| IpNet { addr: IpAddr::from([0, 0, 0, 0]), prefix: 33 });
            assert_eq!(n.contains(ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))), *want, "{net} {ip}");
        }
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert_eq!(IpNet::parse(bad), None, "{bad}");
        }
    }
}
