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

use goru_protocol::capabilities::{BadEntry, Entry, HostPattern, Scheme};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

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
        "`{origin}` is {} address, refused unless allowed literally (`--allow-host {origin}`)",
        with_article(kind)
    )]
    RestrictedIp { origin: String, kind: &'static str },
}

/// A resolved address that may not be connected to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{host}` resolves to {address}, {} address, which is refused for host names",
    with_article(kind)
)]
pub(crate) struct AddressRefused {
    pub host: String,
    pub address: IpAddr,
    pub kind: &'static str,
}

impl AllowList {
    /// The list of these parsed entries.
    pub(crate) fn new(entries: Vec<Entry>) -> Self {
        AllowList { entries }
    }

    /// Parses every entry; the first bad one is the error.
    pub(crate) fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, BadEntry> {
        let entries = entries
            .iter()
            .map(|e| Entry::parse(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(AllowList { entries })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `url` may be requested (the first request and each redirect).
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), Denied> {
        let Some(scheme) = Scheme::of(url.scheme()) else {
            return Err(Denied::Scheme(url.to_string()));
        };
        let Some(host) = url.host() else {
            return Err(Denied::NoHost(url.to_string()));
        };
        let port = url.port_or_known_default().unwrap_or(0);
        let listed = self
            .entries
            .iter()
            .any(|entry| entry.allows(scheme, port) && entry.host.matches(&host));
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

/// `scheme://host[:port]` of a URL, the form an entry is written in.
fn origin(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// `kind` with its indefinite article: "a loopback", "an unspecified".
fn with_article(kind: &str) -> String {
    let vowel = kind
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c));
    format!("{} {kind}", if vowel { "an" } else { "a" })
}

/// The kind of a non-public address, `None` for a public one.
///
/// These are refused for names (and for IP literals not listed): every
/// range of IANA's IPv4 and IPv6 special-purpose address registries that is
/// not globally reachable, and a few that are but are no place for an HTTP
/// request (`192.0.0.0/24`, `2001::/23`); multicast and broadcast. Addresses
/// that carry an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4)
/// are judged by that address too. For IPv6 the rule is by exception: only
/// global unicast (`2000::/3`) and NAT64 (`64:ff9b::/96`) can be public.
pub(crate) fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => restricted_v6(v6),
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b, c, d) {
        (169, 254, 169, 254) => "cloud metadata",
        (0, ..) => "unspecified",
        (127, ..) => "loopback",
        (10, ..) | (192, 168, ..) | (172, 16..=31, ..) => "private",
        (100, 64..=127, ..) => "shared (carrier-grade NAT)",
        (169, 254, ..) => "link-local",
        // IETF protocol assignments (DS-Lite, NAT64 discovery, anycast).
        (192, 0, 0, _) => "reserved",
        (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => "documentation",
        // The deprecated 6to4 relay anycast (RFC 7526).
        (192, 88, 99, _) => "reserved",
        (198, 18..=19, ..) => "benchmarking",
        (224..=239, ..) => "multicast",
        (255, 255, 255, 255) => "broadcast",
        (240..=255, ..) => "reserved",
        _ => return None,
    })
}

fn restricted_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded_v4 = |high: u16, low: u16| {
        Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8)
    };
    Some(match segments {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
        // ::ffff:a.b.c.d, IPv4-mapped: never a destination of its own.
        [0, 0, 0, 0, 0, 0xffff, high, low] => {
            restricted_v4(embedded_v4(high, low)).unwrap_or("IPv4-mapped")
        }
        // ::a.b.c.d, IPv4-compatible (deprecated by RFC 4291).
        [0, 0, 0, 0, 0, 0, high, low] => {
            restricted_v4(embedded_v4(high, low)).unwrap_or("IPv4-compatible")
        }
        // NAT64, well-known prefix 64:ff9b::/96: reaches the IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => return restricted_v4(embedded_v4(high, low)),
        // NAT64 local-use prefix 64:ff9b:1::/48: a translator of one's own network.
        [0x64, 0xff9b, 1, ..] => "private",
        [0x100, 0, 0, 0, ..] => "discard-only",
        // Teredo, 2001::/32: a tunnel to an IPv4 address hidden in the rest.
        [0x2001, 0, ..] => "Teredo",
        [0x2001, 2, 0, ..] => "benchmarking",
        // The rest of 2001::/23, IETF protocol assignments.
        [0x2001, 0..=0x1ff, ..] => "reserved",
        [0x2001, 0xdb8, ..] => "documentation",
        [0x3fff, 0..=0x0fff, ..] => "documentation",
        // 6to4: 2002:AABB:CCDD::/48 carries the IPv4 address AA.BB.CC.DD.
        [0x2002, high, low, ..] => return restricted_v4(embedded_v4(high, low)),
        [0xfc00..=0xfdff, ..] => "private",
        [0xfe80..=0xfebf, ..] => "link-local",
        [0xfec0..=0xfeff, ..] => "site-local",
        [0xff00..=0xffff, ..] => "multicast",
        // Global unicast, 2000::/3, is the only public IPv6 space.
        [0x2000..=0x3fff, ..] => return None,
        _ => "reserved",
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
            // no scheme: both, each on its default port, or both on the port written
            ("api.example.com", "https://api.example.com/", true),
            ("api.example.com", "http://api.example.com/", true),
            ("api.example.com", "https://api.example.com:8443/", false),
            ("api.example.com", "http://api.example.com:443/", false),
            ("api.example.com:8080", "http://api.example.com:8080/", true),
            (
                "api.example.com:8080",
                "https://api.example.com:8080/",
                true,
            ),
            ("api.example.com:8080", "https://api.example.com/", false),
            ("*.example.com", "http://a.example.com/", true),
            ("*.example.com", "https://example.com/", false),
            ("127.0.0.1:8080", "http://127.0.0.1:8080/", true),
            ("127.0.0.1:8080", "http://127.0.0.1/", false),
            ("[::1]:8080", "http://[::1]:8080/", true),
            ("api.example.com", "ftp://api.example.com/", false),
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
    fn the_first_bad_entry_is_the_error() {
        let err = AllowList::parse(&["api.example.com", "ftp://x", "a.*.b"]).unwrap_err();
        assert_eq!(err.entry, "ftp://x");
    }

    /// The first and the last address of `prefix` (`10.0.0.0/8`).
    fn ends_of(prefix: &str) -> (IpAddr, IpAddr) {
        let (address, len) = prefix.split_once('/').unwrap();
        let len: u32 = len.parse().unwrap();
        match address.parse::<IpAddr>().unwrap() {
            IpAddr::V4(v4) => {
                let host_bits = u32::MAX.checked_shr(len).unwrap_or(0);
                let first = u32::from(v4) & !host_bits;
                (
                    IpAddr::V4(first.into()),
                    IpAddr::V4((first | host_bits).into()),
                )
            }
            IpAddr::V6(v6) => {
                let host_bits = u128::MAX.checked_shr(len).unwrap_or(0);
                let first = u128::from(v6) & !host_bits;
                (
                    IpAddr::V6(first.into()),
                    IpAddr::V6((first | host_bits).into()),
                )
            }
        }
    }

    #[test]
    fn every_special_purpose_range_is_refused_at_both_ends() {
        // IANA's IPv4 and IPv6 special-purpose address registries, row by
        // row, and multicast: (prefix, kind of its first and last address).
        let rows: &[(&str, &str)] = &[
            ("0.0.0.0/8", "unspecified"),
            ("10.0.0.0/8", "private"),
            ("100.64.0.0/10", "shared (carrier-grade NAT)"),
            ("127.0.0.0/8", "loopback"),
            ("169.254.0.0/16", "link-local"),
            ("172.16.0.0/12", "private"),
            ("192.0.0.0/24", "reserved"),
            ("192.0.0.0/29", "reserved"),
            ("192.0.0.8/32", "reserved"),
            ("192.0.0.9/32", "reserved"),
            ("192.0.0.10/32", "reserved"),
            ("192.0.0.170/32", "reserved"),
            ("192.0.0.171/32", "reserved"),
            ("192.0.2.0/24", "documentation"),
            ("192.88.99.0/24", "reserved"),
            ("192.168.0.0/16", "private"),
            ("198.18.0.0/15", "benchmarking"),
            ("198.51.100.0/24", "documentation"),
            ("203.0.113.0/24", "documentation"),
            ("224.0.0.0/4", "multicast"),
            ("240.0.0.0/4", "reserved"),
            ("255.255.255.255/32", "broadcast"),
            ("::/128", "unspecified"),
            ("::1/128", "loopback"),
            ("::ffff:0:0/96", "unspecified"),
            ("::ffff:8.8.8.0/120", "IPv4-mapped"),
            ("::8.8.8.0/120", "IPv4-compatible"),
            ("64:ff9b:1::/48", "private"),
            ("100::/64", "discard-only"),
            ("100:0:0:1::/64", "reserved"),
            ("2001::/23", "Teredo"),
            ("2001::/32", "Teredo"),
            ("2001:1::1/128", "reserved"),
            ("2001:1::2/128", "reserved"),
            ("2001:1::3/128", "reserved"),
            ("2001:2::/48", "benchmarking"),
            ("2001:3::/32", "reserved"),
            ("2001:4:112::/48", "reserved"),
            ("2001:20::/28", "reserved"),
            ("2001:30::/28", "reserved"),
            ("2001:db8::/32", "documentation"),
            ("3fff::/20", "documentation"),
            ("5f00::/16", "reserved"),
            ("fc00::/7", "private"),
            ("fe80::/10", "link-local"),
            ("fec0::/10", "site-local"),
            ("ff00::/8", "multicast"),
            ("4000::/2", "reserved"),
            ("1000::/4", "reserved"),
        ];
        for &(prefix, kind) in rows {
            let (first, last) = ends_of(prefix);
            assert_eq!(restricted(first), Some(kind), "{first}, first of {prefix}");
            assert!(restricted(last).is_some(), "{last}, last of {prefix}");
        }
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
            ("192.0.1.1", None),
            ("192.88.98.255", None),
            ("192.88.100.0", None),
            ("198.17.255.255", None),
            ("198.20.0.0", None),
            ("223.255.255.255", None),
            ("127.255.255.254", Some("loopback")),
            ("169.254.169.254", Some("cloud metadata")),
            ("169.254.0.1", Some("link-local")),
            ("255.255.255.254", Some("reserved")),
            ("2606:4700::1111", None),
            ("2001:4860:4860::8888", None),
            ("2001:200::1", None),
            ("2001:db7:ffff::1", None),
            ("2001:db9::1", None),
            ("3ffe::1", None),
            ("3fff:1000::1", None),
            ("2002:808:808::1", None),
            ("64:ff9b::808:808", None),
            ("fd00:ec2::254", Some("private")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.1.2.3", Some("private")),
            ("::ffff:169.254.169.254", Some("cloud metadata")),
            ("::ffff:8.8.8.8", Some("IPv4-mapped")),
            ("::127.0.0.1", Some("loopback")),
            ("::8.8.8.8", Some("IPv4-compatible")),
            ("::ffff:0:808:808", Some("reserved")),
            ("64:ff9b::a9fe:a9fe", Some("cloud metadata")),
            ("2002:7f00:1::1", Some("loopback")),
            ("2002:c0a8:101::1", Some("private")),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some("Teredo")),
        ];
        for &(text, expected) in rows {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(restricted(ip), expected, "{text}");
        }
    }

    #[test]
    fn messages_take_the_article_of_the_kind() {
        let list = AllowList::parse(&["api.example.com"]).unwrap();
        let denied = |url: &str| list.check_url(&Url::parse(url).unwrap()).unwrap_err();
        assert_eq!(
            denied("http://0.0.0.0/").to_string(),
            "`http://0.0.0.0` is an unspecified address, refused unless allowed literally \
             (`--allow-host http://0.0.0.0`)"
        );
        assert!(
            denied("http://[::ffff:8.8.8.8]/")
                .to_string()
                .contains("is an IPv4-mapped address"),
        );
        assert!(
            denied("http://127.0.0.1/")
                .to_string()
                .contains("is a loopback address")
        );
        let refused = list
            .check_address("a.example.com", "::".parse().unwrap())
            .unwrap_err();
        assert!(
            refused.to_string().contains(", an unspecified address,"),
            "{refused}"
        );
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
