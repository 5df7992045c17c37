//! Where the server may send requests of its own (notifications, agent
//! checks): an allow-list of host names and networks, checked on the
//! addresses a name resolves to (so a public name cannot point the service
//! at the operator's own network).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One entry of the allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// `public`: every globally routable address.
    Public,
    /// `loopback`: 127.0.0.0/8 and ::1.
    Loopback,
    /// `10.0.0.0/8`, `fd00::/8`, or one address.
    Network(IpAddr, u8),
    /// `hooks.example.com`, or `*.example.com` for its subdomains: any
    /// address the name resolves to.
    Host(String),
}

/// Why an allow-list entry was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not 'public', 'loopback', a network (10.0.0.0/8), an address or a host name")]
pub struct BadRule(pub String);

/// The hosts and networks the server may send requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<Rule>,
}

impl AllowList {
    /// Reads entries such as `public`, `loopback`, `10.1.0.0/16`,
    /// `hooks.example.com`, `*.example.com`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowList, BadRule> {
        let rules = entries
            .iter()
            .map(|e| rule(e.as_ref().trim()).ok_or_else(|| BadRule(e.as_ref().to_owned())))
            .collect::<Result<_, _>>()?;
        Ok(AllowList { rules })
    }

    /// The default: public addresses, and loopback when the server itself
    /// listens on loopback only (a developer's machine).
    pub fn default_for(listening_on_loopback: bool) -> AllowList {
        let mut rules = vec![Rule::Public];
        if listening_on_loopback {
            rules.push(Rule::Loopback);
        }
        AllowList { rules }
    }

    /// Whether the name is allowed whatever it resolves to.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.rules.iter().any(|r| match r {
            Rule::Host(name) => match name.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
                None => *name == host,
            },
            _ => false,
        })
    }

    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.rules.iter().any(|r| match r {
            Rule::Public => is_public(ip),
            Rule::Loopback => ip.is_loopback(),
            Rule::Network(net, bits) => in_network(ip, *net, *bits),
            Rule::Host(_) => false,
        })
    }
}

fn rule(entry: &str) -> Option<Rule> {
    match entry.to_ascii_lowercase().as_str() {
        "" => None,
        "public" => Some(Rule::Public),
        "loopback" => Some(Rule::Loopback),
        e => {
            if let Some((addr, bits)) = e.split_once('/') {
                let addr: IpAddr = addr.parse().ok()?;
                let bits: u8 = bits.parse().ok()?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                return (bits <= max).then_some(Rule::Network(addr, bits));
            }
            if let Ok(addr) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
                let bits = if addr.is_ipv4() { 32 } else { 128 };
                return Some(Rule::Network(addr, bits));
            }
            let name = e.strip_prefix("*.").unwrap_or(e);
            let valid = !name.is_empty()
                && name.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            valid.then(|| Rule::Host(e.to_owned()))
        }
    }
}

/// An IPv4-mapped IPv6 address is judged as the IPv4 address it maps.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Globally routable: not private, loopback, link-local, shared (CGNAT),
/// documentation, benchmarking, multicast, reserved or unspecified.
fn is_public(ip: IpAddr) -> bool {
    const V4_SPECIAL: &[(Ipv4Addr, u8)] = &[
        (Ipv4Addr::new(0, 0, 0, 0), 8),
        (Ipv4Addr::new(10, 0, 0, 0), 8),
        (Ipv4Addr::new(100, 64, 0, 0), 10),
        (Ipv4Addr::new(127, 0, 0, 0), 8),
        (Ipv4Addr::new(169, 254, 0, 0), 16),
        (Ipv4Addr::new(172, 16, 0, 0), 12),
        (Ipv4Addr::new(192, 0, 0, 0), 24),
        (Ipv4Addr::new(192, 0, 2, 0), 24),
        (Ipv4Addr::new(192, 168, 0, 0), 16),
        (Ipv4Addr::new(198, 18, 0, 0), 15),
        (Ipv4Addr::new(198, 51, 100, 0), 24),
        (Ipv4Addr::new(203, 0, 113, 0), 24),
        (Ipv4Addr::new(224, 0, 0, 0), 4),
        (Ipv4Addr::new(240, 0, 0, 0), 4),
    ];
    const V6_SPECIAL: &[(Ipv6Addr, u8)] = &[
        (Ipv6Addr::UNSPECIFIED, 128),
        (Ipv6Addr::LOCALHOST, 128),
        (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
    ];
    match canonical(ip) {
        IpAddr::V4(v4) => !V4_SPECIAL
            .iter()
            .any(|(n, b)| in_network(IpAddr::V4(v4), IpAddr::V4(*n), *b)),
        IpAddr::V6(v6) => !V6_SPECIAL
            .iter()
            .any(|(n, b)| in_network(IpAddr::V6(v6), IpAddr::V6(*n), *b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_allows_public_addresses_and_loopback_only_when_listening_on_it() {
        let table = [
            ("8.8.8.8", true, true),
            ("2606:4700::1111", true, true),
            ("127.0.0.1", false, true),
            ("::1", false, true),
            ("::ffff:127.0.0.1", false, true),
            ("10.1.2.3", false, false),
            ("172.20.0.1", false, false),
            ("192.168.1.1", false, false),
            ("169.254.169.254", false, false),
            ("100.64.0.1", false, false),
            ("fd00::1", false, false),
            ("fe80::1", false, false),
            ("0.0.0.0", false, false),
            ("::ffff:10.0.0.1", false, false),
        ];
        for (addr, public_listener, loopback_listener) in table {
            assert_eq!(
                AllowList::default_for(false).ip_allowed(ip(addr)),
                public_listener,
                "{addr} with a public listener"
            );
            assert_eq!(
                AllowList::default_for(true).ip_allowed(ip(addr)),
                loopback_listener,
                "{addr} with a loopback listener"
            );
        }
    }

    #[test]
    fn networks_addresses_and_host_names_are_allowed_as_listed() {
        let list = AllowList::parse(&["10.1.0.0/16", "192.168.5.5", "hooks.corp", "*.example.com"])
            .unwrap();
        assert!(list.ip_allowed(ip("10.1.200.3")));
        assert!(!list.ip_allowed(ip("10.2.0.1")));
        assert!(list.ip_allowed(ip("192.168.5.5")));
        assert!(!list.ip_allowed(ip("192.168.5.6")));
        assert!(!list.ip_allowed(ip("8.8.8.8")), "public is not listed");
        assert!(list.host_allowed("HOOKS.corp."));
        assert!(list.host_allowed("a.example.com"));
        assert!(!list.host_allowed("example.com"));
        assert!(!list.host_allowed("badexample.com"));
        assert!(!list.host_allowed("hooks.corp.evil"));
    }

    #[test]
    fn an_entry_that_is_neither_network_nor_name_is_refused() {
        for bad in ["10.0.0.0/33", "", "http://x", "a..b", "::1/129"] {
            assert_eq!(
                AllowList::parse(&[bad]),
                Err(BadRule(bad.to_owned())),
                "{bad}"
            );
        }
    }
}
