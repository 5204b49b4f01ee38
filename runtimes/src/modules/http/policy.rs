//! Where `http` may go: the allow-list, and which addresses may be connected to.
//!
//! Two checks, both here:
//! - [`AllowList::check_url`] runs on the URL of the request and again on
//!   every redirect: scheme, host and port must match an entry. A URL whose
//!   host is an IP literal never reaches a resolver, so it must be listed
//!   itself.
//! - [`AllowList::check_address`] runs on every address a host name resolves
//!   to, inside the resolver the HTTP client connects with: loopback,
//!   private, link-local (cloud metadata), and other non-public addresses
//!   are dropped unless an entry names that IP literally. Because the
//!   addresses the resolver returns are the ones connected to, a name that
//!   answers with a public address when checked and a private one when used
//!   (DNS rebinding) gains nothing: there is no second lookup.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// A parsed `--allow-host` entry: scheme, host pattern, port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    https: bool,
    host: HostPattern,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// One name (lowercase, no trailing dot).
    Exact(String),
    /// `*.suffix`: any name ending in `.suffix`, but not `suffix` itself.
    Subdomains(String),
    /// An address written literally.
    Ip(IpAddr),
}

/// Why an allow-list entry is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allowed host `{entry}`: {reason}")]
pub struct BadEntry {
    pub entry: String,
    pub reason: String,
}

/// The hosts a session's `http` module may reach.
#[derive(Clone, Debug, Default)]
pub(crate) struct AllowList {
    entries: Vec<Entry>,
}

/// Why a URL may not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Denied {
    #[error("`{0}` is not an http or https URL")]
    Scheme(String),
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error("`{origin}` is not an allowed host (allow it with `--allow-host {origin}`)")]
    NotListed { origin: String },
    #[error(
        "`{origin}` is a {kind} address, refused unless allowed literally (`--allow-host {origin}`)"
    )]
    RestrictedIp { origin: String, kind: &'static str },
}

/// A resolved address that may not be connected to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{host}` resolves to {address}, a {kind} address, which is refused for host names")]
pub(crate) struct AddressRefused {
    pub host: String,
    pub address: IpAddr,
    pub kind: &'static str,
}

impl AllowList {
    /// Parses every entry; the first bad one is the error.
    pub(crate) fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, BadEntry> {
        let entries = entries
            .iter()
            .map(|e| parse_entry(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(AllowList { entries })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `url` may be requested (the first request and each redirect).
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), Denied> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(Denied::Scheme(url.to_string())),
        };
        let Some(host) = url.host() else {
            return Err(Denied::NoHost(url.to_string()));
        };
        let port = url.port_or_known_default().unwrap_or(0);
        let listed = self
            .entries
            .iter()
            .any(|entry| entry.https == https && entry.port == port && entry.host.matches(&host));
        if listed {
            return Ok(());
        }
        let origin = origin(url);
        if let Host::Ipv4(_) | Host::Ipv6(_) = host {
            let ip = match host {
                Host::Ipv4(ip) => IpAddr::V4(ip),
                Host::Ipv6(ip) => IpAddr::V6(ip),
                Host::Domain(_) => unreachable!(),
            };
            if let Some(kind) = restricted(ip) {
                return Err(Denied::RestrictedIp { origin, kind });
            }
        }
        Err(Denied::NotListed { origin })
    }

    /// Whether a name that resolved to `address` may be connected to there.
    pub(crate) fn check_address(&self, host: &str, address: IpAddr) -> Result<(), AddressRefused> {
        let address = address.to_canonical();
        match restricted(address) {
            None => Ok(()),
            Some(_) if self.lists_ip(address) => Ok(()),
            Some(kind) => Err(AddressRefused {
                host: host.to_string(),
                address,
                kind,
            }),
        }
    }

    fn lists_ip(&self, address: IpAddr) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.host == HostPattern::Ip(address))
    }
}

impl HostPattern {
    fn matches(&self, host: &Host<&str>) -> bool {
        match (self, host) {
            (HostPattern::Exact(name), Host::Domain(domain)) => {
                normalize_domain(domain) == name.as_str()
            }
            (HostPattern::Subdomains(suffix), Host::Domain(domain)) => {
                let domain = normalize_domain(domain);
                domain.len() > suffix.len() + 1
                    && domain.ends_with(suffix.as_str())
                    && domain.as_bytes()[domain.len() - suffix.len() - 1] == b'.'
            }
            (HostPattern::Ip(ip), Host::Ipv4(v4)) => *ip == IpAddr::V4(*v4),
            (HostPattern::Ip(ip), Host::Ipv6(v6)) => *ip == IpAddr::V6(*v6),
            _ => false,
        }
    }
}

/// Lowercase, without one trailing dot (`Example.COM.` is `example.com`).
fn normalize_domain(domain: &str) -> String {
    domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase()
}

/// `scheme://host[:port]` of a URL, the form an entry is written in.
fn origin(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

fn parse_entry(text: &str) -> Result<Entry, BadEntry> {
    let bad = |reason: &str| BadEntry {
        entry: text.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = text.trim();
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Err(bad(
            "write the scheme and the host, as in `https://api.example.com`",
        ));
    };
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err(bad("the scheme must be `http` or `https`")),
    };
    // `*` is not a valid host character, so the wildcard is taken off
    // before the rest is parsed as a URL.
    let (wildcard, rest) = match rest.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    if rest.contains('*') {
        return Err(bad(
            "a wildcard may only be the first label, as in `https://*.example.com`",
        ));
    }
    let url = Url::parse(&format!("{scheme}://{rest}")).map_err(|e| bad(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("an entry names a host, without a user or password"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "an entry names a host, not a path: write only `scheme://host[:port]`",
        ));
    }
    let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
    let host = match url.host() {
        Some(Host::Domain(domain)) => {
            let domain = normalize_domain(domain);
            if domain.is_empty() {
                return Err(bad("the host is empty"));
            }
            if wildcard {
                if !domain.contains('.') {
                    return Err(bad(
                        "a wildcard needs at least two labels after `*.`, as in `*.example.com`",
                    ));
                }
                HostPattern::Subdomains(domain)
            } else {
                HostPattern::Exact(domain)
            }
        }
        Some(Host::Ipv4(ip)) if !wildcard => HostPattern::Ip(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) if !wildcard => HostPattern::Ip(IpAddr::V6(ip)),
        Some(_) => return Err(bad("a wildcard cannot stand before an IP address")),
        None => return Err(bad("the host is missing")),
    };
    Ok(Entry { https, host, port })
}

/// The kind of a non-public address, `None` for a public one.
///
/// These are refused for names (and for IP literals not listed): loopback,
/// private (RFC 1918, IPv6 unique-local), shared address space (carrier-grade
/// NAT), link-local (where cloud metadata services live: 169.254.169.254,
/// fd00:ec2::254), unspecified, broadcast, multicast, documentation,
/// benchmarking and reserved ranges; and the same addresses embedded in IPv6
/// (IPv4-mapped, IPv4-compatible, NAT64, 6to4).
pub(crate) fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => restricted_v6(v6),
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (169, 254, 169) if ip.octets()[3] == 254 => "cloud metadata",
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (255, 255, 255) if ip.octets()[3] == 255 => "broadcast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn restricted_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded_v4 = |high: u16, low: u16| {
        Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8)
    };
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    match segments {
        // ::ffff:a.b.c.d (IPv4-mapped) and ::a.b.c.d (IPv4-compatible).
        [0, 0, 0, 0, 0, 0xffff, high, low] | [0, 0, 0, 0, 0, 0, high, low] => {
            return restricted_v4(embedded_v4(high, low));
        }
        // NAT64, well-known prefix 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => return restricted_v4(embedded_v4(high, low)),
        // NAT64 local-use prefix 64:ff9b:1::/48: a translator of one's own network.
        [0x64, 0xff9b, 1, ..] => return Some("private"),
        // 6to4: 2002:AABB:CCDD::/48 carries the IPv4 address AA.BB.CC.DD.
        [0x2002, high, low, ..] => return restricted_v4(embedded_v4(high, low)),
        _ => {}
    }
    Some(match segments[0] {
        0xfc00..=0xfdff => "private",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        0x2001 if segments[1] == 0x0db8 => "documentation",
        0x0100 if segments[1..4] == [0, 0, 0] => "reserved",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_against_entries() {
        // (entry, url, allowed)
        let rows: &[(&str, &str, bool)] = &[
            (
                "https://api.example.com",
                "https://api.example.com/v1?q=1",
                true,
            ),
            ("https://api.example.com", "https://API.Example.COM/", true),
            ("https://api.example.com", "https://api.example.com./", true),
            (
                "https://api.example.com",
                "https://api.example.com:443/",
                true,
            ),
            (
                "https://api.example.com/",
                "https://api.example.com/x",
                true,
            ),
            ("HTTPS://Api.Example.com", "https://api.example.com/", true),
            // scheme must match
            ("https://api.example.com", "http://api.example.com/", false),
            ("http://api.example.com", "https://api.example.com/", false),
            // port: the scheme's default unless written
            (
                "https://api.example.com",
                "https://api.example.com:8443/",
                false,
            ),
            (
                "https://api.example.com:8443",
                "https://api.example.com:8443/",
                true,
            ),
            (
                "https://api.example.com:8443",
                "https://api.example.com/",
                false,
            ),
            ("http://api.example.com:80", "http://api.example.com/", true),
            // exact host: no subdomains, no look-alikes
            ("https://example.com", "https://api.example.com/", false),
            (
                "https://example.com",
                "https://example.com.evil.net/",
                false,
            ),
            ("https://example.com", "https://notexample.com/", false),
            (
                "https://api.example.com",
                "https://api.example.com@evil.net/",
                false,
            ),
            // wildcard: subdomains at any depth, never the apex
            ("https://*.example.com", "https://api.example.com/", true),
            ("https://*.example.com", "https://a.b.example.com/", true),
            ("https://*.example.com", "https://example.com/", false),
            ("https://*.example.com", "https://evilexample.com/", false),
            (
                "https://*.example.com",
                "https://example.com.evil.net/",
                false,
            ),
            ("https://*.example.com", "http://api.example.com/", false),
            (
                "https://*.example.com:8443",
                "https://api.example.com:8443/",
                true,
            ),
            (
                "https://*.example.com:8443",
                "https://api.example.com/",
                false,
            ),
            // IP literals: exactly the address and port listed
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/x", true),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8081/", false),
            ("http://127.0.0.1:8080", "http://localhost:8080/", false),
            ("http://127.0.0.1:8080", "http://127.0.0.2:8080/", false),
            (
                "http://127.0.0.1:8080",
                "http://[::ffff:127.0.0.1]:8080/",
                false,
            ),
            ("http://127.0.0.1:8080", "http://2130706433:8080/", true),
            ("http://127.0.0.1:8080", "http://0x7f.1:8080/", true),
            ("http://10.0.0.1", "http://0x0a.0.0.1/", true),
            ("http://10.0.0.1", "http://012.0.0.1/", true),
            ("http://[::1]:8080", "http://[0:0::1]:8080/", true),
            ("http://localhost:8080", "http://127.0.0.1:8080/", false),
            ("https://api.example.com", "http://10.0.0.1/", false),
            (
                "https://api.example.com",
                "http://169.254.169.254/latest/",
                false,
            ),
            // other schemes never
            ("https://api.example.com", "ftp://api.example.com/", false),
            ("https://api.example.com", "file:///etc/passwd", false),
        ];
        for &(entry, url, expected) in rows {
            let list = AllowList::parse(&[entry]).unwrap();
            let url = Url::parse(url).unwrap();
            assert_eq!(
                list.check_url(&url).is_ok(),
                expected,
                "entry {entry}, url {url}: {:?}",
                list.check_url(&url)
            );
        }
    }

    #[test]
    fn denials_name_the_origin_to_allow() {
        let list = AllowList::parse(&["https://api.example.com"]).unwrap();
        let denied = list
            .check_url(&Url::parse("http://other.example.com:8080/x").unwrap())
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "`http://other.example.com:8080` is not an allowed host \
             (allow it with `--allow-host http://other.example.com:8080`)"
        );
        let denied = list
            .check_url(&Url::parse("http://169.254.169.254/latest").unwrap())
            .unwrap_err();
        assert!(
            denied.to_string().contains("cloud metadata address"),
            "{denied}"
        );
    }

    #[test]
    fn bad_entries() {
        for entry in [
            "api.example.com",
            "ftp://api.example.com",
            "https://",
            "https://api.example.com/v1",
            "https://api.example.com/?q",
            "https://user:pw@api.example.com",
            "https://*.com",
            "https://*",
            "https://a.*.example.com",
            "https://*.127.0.0.1",
            "https://api.example.com:99999",
            "https://exa mple.com",
        ] {
            assert!(
                AllowList::parse(&[entry]).is_err(),
                "{entry} should be refused"
            );
        }
        let err = AllowList::parse(&["api.example.com"]).unwrap_err();
        assert!(
            err.to_string().contains("`https://api.example.com`"),
            "{err}"
        );
    }

    #[test]
    fn address_kinds() {
        // (address, kind or None for public)
        let rows: &[(&str, Option<&str>)] = &[
            ("8.8.8.8", None),
            ("93.184.216.34", None),
            ("172.15.255.255", None),
            ("172.32.0.0", None),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("127.0.0.1", Some("loopback")),
            ("127.255.255.254", Some("loopback")),
            ("10.0.0.1", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.1", Some("private")),
            ("100.64.0.1", Some("shared (carrier-grade NAT)")),
            ("100.100.100.200", Some("shared (carrier-grade NAT)")),
            ("169.254.169.254", Some("cloud metadata")),
            ("169.254.0.1", Some("link-local")),
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("unspecified")),
            ("255.255.255.255", Some("broadcast")),
            ("224.0.0.1", Some("multicast")),
            ("240.0.0.1", Some("reserved")),
            ("192.0.0.170", Some("reserved")),
            ("192.0.2.1", Some("documentation")),
            ("198.18.0.1", Some("benchmarking")),
            ("2606:4700::1111", None),
            ("2001:4860:4860::8888", None),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("fc00::1", Some("private")),
            ("fd00:ec2::254", Some("private")),
            ("fe80::1", Some("link-local")),
            ("fec0::1", Some("site-local")),
            ("ff02::1", Some("multicast")),
            ("2001:db8::1", Some("documentation")),
            ("100::1", Some("reserved")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.1.2.3", Some("private")),
            ("::ffff:169.254.169.254", Some("cloud metadata")),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some("loopback")),
            ("64:ff9b::a9fe:a9fe", Some("cloud metadata")),
            ("64:ff9b::808:808", None),
            ("64:ff9b:1::1", Some("private")),
            ("2002:7f00:1::1", Some("loopback")),
            ("2002:c0a8:101::1", Some("private")),
            ("2002:808:808::1", None),
        ];
        for &(text, expected) in rows {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(restricted(ip), expected, "{text}");
        }
    }

    #[test]
    fn resolved_addresses_need_a_literal_entry() {
        let list = AllowList::parse(&["https://*.example.com", "http://127.0.0.1:8080"]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(
            list.check_address("a.example.com", ip("93.184.216.34"))
                .is_ok()
        );
        assert!(list.check_address("a.example.com", ip("127.0.0.1")).is_ok());
        assert!(
            list.check_address("a.example.com", ip("::ffff:127.0.0.1"))
                .is_ok()
        );
        let refused = list
            .check_address("a.example.com", ip("169.254.169.254"))
            .unwrap_err();
        assert_eq!(refused.kind, "cloud metadata");
        assert_eq!(
            refused.to_string(),
            "`a.example.com` resolves to 169.254.169.254, a cloud metadata address, \
             which is refused for host names"
        );
        assert!(list.check_address("a.example.com", ip("10.0.0.1")).is_err());
        assert!(list.check_address("a.example.com", ip("::1")).is_err());
    }
}
