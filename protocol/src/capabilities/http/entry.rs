//! One allow-list entry, as people write them: the only parser of
//! `--allow-host` and of the `http` capability's `allow`.
//!
//! ```text
//! entry     = [scheme "://"] authority ["/"]
//! scheme    = "http" | "https"                    (any case)
//! authority = host [":" port]                     (port 1..=65535)
//! host      = name | "*." name | IPv4 | "[" IPv6 "]"
//! ```
//!
//! The scheme rule: an entry without a scheme (`api.example.com`, Deno's
//! `--allow-net` form) allows both `https` and `http`, each on its own
//! default port (443, 80) unless a port is written, in which case both
//! schemes on that port. An entry with a scheme allows that scheme only, on
//! its default port unless one is written. A port is never "any": Deno's
//! `host` allows every port, which would let a listed name reach every
//! service on it.

use std::net::IpAddr;
use url::Host;

/// A parsed entry: which schemes, which host, which port (the engine's
/// allow-list matches requests against these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `None`: both `http` and `https`.
    pub scheme: Option<Scheme>,
    pub host: HostPattern,
    /// `None`: the default port of the request's scheme.
    pub port: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn of(name: &str) -> Option<Scheme> {
        match name {
            "https" => Some(Scheme::Https),
            "http" => Some(Scheme::Http),
            _ => None,
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// One name (lowercase, IDNA-encoded, no trailing dot).
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

/// The forms an entry may take, for messages.
const FORMS: &str = "write `host`, `host:port`, `*.host`, `[ipv6]:port` or `https://host[:port]`";

impl Entry {
    /// Parses one entry (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Entry, BadEntry> {
        let bad = |reason: String| BadEntry {
            entry: text.to_string(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(bad(format!("the entry is empty: {FORMS}")));
        }
        let (scheme, authority) = match trimmed.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = Scheme::of(&scheme.to_ascii_lowercase()).ok_or_else(|| {
                    bad("the scheme must be `http` or `https`, or left out for both".into())
                })?;
                // `https://host/` is how a browser shows an origin.
                (Some(scheme), rest.strip_suffix('/').unwrap_or(rest))
            }
            None => (None, trimmed),
        };
        let (host, port) = split_authority(authority).map_err(bad)?;
        let host = host_pattern(host).map_err(bad)?;
        Ok(Entry { scheme, host, port })
    }

    /// Whether a request with `scheme` to `port` is within this entry
    /// (the host is matched apart).
    pub fn allows(&self, scheme: Scheme, port: u16) -> bool {
        self.scheme.is_none_or(|own| own == scheme)
            && self.port.unwrap_or(scheme.default_port()) == port
    }
}

/// One allow-list entry, parsed, for an embedder that must compare entries
/// (the daemon's operator policy): whether every request one entry allows
/// is allowed by another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowEntry {
    text: String,
    entry: Entry,
}

impl AllowEntry {
    /// Parses `text` with the one parser of allow-list entries.
    pub fn parse(text: &str) -> Result<AllowEntry, BadEntry> {
        Ok(AllowEntry {
            text: text.trim().to_string(),
            entry: Entry::parse(text)?,
        })
    }

    /// The entry as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether every (scheme, host, port) that `other` allows, this entry
    /// allows too.
    pub fn covers(&self, other: &AllowEntry) -> bool {
        self.entry.covers(&other.entry)
    }
}

impl Entry {
    /// Whether every request `other` allows is allowed by `self`: each of
    /// its schemes on its port, and each host it matches.
    fn covers(&self, other: &Entry) -> bool {
        let schemes = match other.scheme {
            Some(scheme) => vec![scheme],
            None => vec![Scheme::Http, Scheme::Https],
        };
        schemes
            .into_iter()
            .all(|scheme| self.allows(scheme, other.port.unwrap_or(scheme.default_port())))
            && self.host.covers(&other.host)
    }
}

impl HostPattern {
    /// Whether a request's host (as the URL standard parsed it) matches.
    pub fn matches(&self, host: &Host<&str>) -> bool {
        match (self, host) {
            (HostPattern::Exact(name), Host::Domain(domain)) => {
                normalize_domain(domain) == name.as_str()
            }
            (HostPattern::Subdomains(suffix), Host::Domain(domain)) => {
                is_subdomain(&normalize_domain(domain), suffix)
            }
            (HostPattern::Ip(ip), Host::Ipv4(v4)) => *ip == IpAddr::V4(*v4),
            (HostPattern::Ip(ip), Host::Ipv6(v6)) => *ip == IpAddr::V6(*v6),
            _ => false,
        }
    }

    /// Whether every host `other` matches, `self` matches.
    fn covers(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Subdomains(suffix), HostPattern::Exact(name)) => {
                is_subdomain(name, suffix)
            }
            (HostPattern::Subdomains(suffix), HostPattern::Subdomains(inner)) => {
                inner == suffix || is_subdomain(inner, suffix)
            }
            _ => self == other,
        }
    }
}

/// `name` ends in `.suffix` (a strict subdomain).
fn is_subdomain(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1
        && name.ends_with(suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

/// `host[:port]` into the host text and the port.
fn split_authority(authority: &str) -> Result<(&str, Option<u16>), String> {
    if authority.contains('@') {
        return Err("an entry names a host, without a user or password".into());
    }
    if authority.contains(['/', '?', '#']) {
        return Err(format!("an entry names a host, not a path: {FORMS}"));
    }
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let (host, rest) = authority.split_at(end + 1);
                match rest.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if rest.is_empty() => (host, None),
                    None => return Err(format!("unexpected `{rest}` after `{host}`")),
                }
            }
            None => return Err("`[` without its `]`".into()),
        }
    } else {
        match authority.split_once(':') {
            Some((_, rest)) if rest.contains(':') => {
                return Err("write an IPv6 address in brackets, as in `[::1]:8080`".into());
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = port.map(parse_port).transpose()?;
    Ok((host, port))
}

fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() {
        return Err("the port is missing after `:`".into());
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(format!(
            "the port must be a number from 1 to 65535, not `{text}`"
        )),
    }
}

fn host_pattern(text: &str) -> Result<HostPattern, String> {
    // `*` is not a valid host character, so the wildcard is taken off
    // before the rest is parsed as a host.
    let (wildcard, name) = match text.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if name.contains('*') {
        return Err("a wildcard may only be the first label, as in `*.example.com`".into());
    }
    if name.is_empty() {
        return Err(format!("the host is missing: {FORMS}"));
    }
    // The URL standard's host parser, the one request URLs go through, so
    // that an entry and a URL spell a host the same way (IDNA, case, the
    // other spellings of an IPv4 address such as `0x7f.1`).
    let host = Host::parse(name).map_err(|err| format!("`{name}` is not a valid host: {err}"))?;
    match host {
        Host::Domain(domain) => {
            let domain = normalize_domain(&domain);
            if domain.is_empty() {
                return Err(format!("the host is missing: {FORMS}"));
            }
            if !wildcard {
                return Ok(HostPattern::Exact(domain));
            }
            if !domain.contains('.') {
                return Err(
                    "a wildcard needs at least two labels after `*.`, as in `*.example.com`".into(),
                );
            }
            Ok(HostPattern::Subdomains(domain))
        }
        _ if wildcard => Err("a wildcard cannot stand before an IP address".into()),
        Host::Ipv4(ip) => Ok(HostPattern::Ip(IpAddr::V4(ip))),
        Host::Ipv6(ip) => Ok(HostPattern::Ip(IpAddr::V6(ip))),
    }
}

/// Lowercase, without one trailing dot (`Example.COM.` is `example.com`).
pub fn normalize_domain(domain: &str) -> String {
    domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(name: &str) -> HostPattern {
        HostPattern::Exact(name.to_string())
    }

    fn subdomains(name: &str) -> HostPattern {
        HostPattern::Subdomains(name.to_string())
    }

    fn ip(text: &str) -> HostPattern {
        HostPattern::Ip(text.parse().unwrap())
    }

    #[test]
    fn entries_parse_to_scheme_host_and_port() {
        use Scheme::{Http, Https};
        // (input, scheme, host, port)
        let rows: &[(&str, Option<Scheme>, HostPattern, Option<u16>)] = &[
            // Deno's forms: no scheme means both.
            ("api.example.com", None, exact("api.example.com"), None),
            (
                "api.example.com:8080",
                None,
                exact("api.example.com"),
                Some(8080),
            ),
            (
                "api.example.com:443",
                None,
                exact("api.example.com"),
                Some(443),
            ),
            ("API.Example.COM.", None, exact("api.example.com"), None),
            (" api.example.com ", None, exact("api.example.com"), None),
            ("localhost", None, exact("localhost"), None),
            ("*.example.com", None, subdomains("example.com"), None),
            (
                "*.example.com:8443",
                None,
                subdomains("example.com"),
                Some(8443),
            ),
            ("127.0.0.1", None, ip("127.0.0.1"), None),
            ("127.0.0.1:8080", None, ip("127.0.0.1"), Some(8080)),
            ("0x7f.1:8080", None, ip("127.0.0.1"), Some(8080)),
            ("2130706433", None, ip("127.0.0.1"), None),
            ("[::1]", None, ip("::1"), None),
            ("[::1]:8080", None, ip("::1"), Some(8080)),
            ("[0:0::1]:8080", None, ip("::1"), Some(8080)),
            ("bücher.example", None, exact("xn--bcher-kva.example"), None),
            // URLs: that scheme only.
            (
                "https://api.example.com",
                Some(Https),
                exact("api.example.com"),
                None,
            ),
            (
                "https://api.example.com/",
                Some(Https),
                exact("api.example.com"),
                None,
            ),
            (
                "HTTPS://Api.Example.com",
                Some(Https),
                exact("api.example.com"),
                None,
            ),
            (
                "http://api.example.com:80",
                Some(Http),
                exact("api.example.com"),
                Some(80),
            ),
            (
                "https://api.example.com:8443",
                Some(Https),
                exact("api.example.com"),
                Some(8443),
            ),
            (
                "https://*.example.com",
                Some(Https),
                subdomains("example.com"),
                None,
            ),
            (
                "http://127.0.0.1:8080",
                Some(Http),
                ip("127.0.0.1"),
                Some(8080),
            ),
            ("http://[::1]:8080/", Some(Http), ip("::1"), Some(8080)),
        ];
        for (input, scheme, host, port) in rows {
            let expected = Entry {
                scheme: *scheme,
                host: host.clone(),
                port: *port,
            };
            assert_eq!(Entry::parse(input), Ok(expected), "{input:?}");
        }
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        // (input, a part of the reason)
        let rows: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("ftp://api.example.com", "`http` or `https`"),
            ("file:///etc/passwd", "`http` or `https`"),
            ("https://", "host is missing"),
            (":8080", "host is missing"),
            ("https://api.example.com/v1", "not a path"),
            ("api.example.com/v1", "not a path"),
            ("https://api.example.com/?q", "not a path"),
            ("api.example.com#x", "not a path"),
            ("https://user:pw@api.example.com", "without a user"),
            ("user@api.example.com", "without a user"),
            ("*.com", "two labels"),
            ("https://*", "first label"),
            ("*", "first label"),
            ("a.*.example.com", "first label"),
            ("*.127.0.0.1", "IP address"),
            ("api.example.com:", "port is missing"),
            ("api.example.com:0", "1 to 65535"),
            ("api.example.com:99999", "1 to 65535"),
            ("api.example.com:+80", "1 to 65535"),
            ("api.example.com:http", "1 to 65535"),
            ("https://api.example.com:99999", "1 to 65535"),
            ("::1", "brackets"),
            ("::1:8080", "brackets"),
            ("[::1", "without its `]`"),
            ("[::1]8080", "unexpected"),
            ("[not-an-ip]", "not a valid host"),
            ("exa mple.com", "not a valid host"),
            ("1.2.3.4.5", "not a valid host"),
            ("256.0.0.1", "not a valid host"),
        ];
        for (input, reason) in rows {
            match Entry::parse(input) {
                Err(err) => {
                    assert_eq!(err.entry, *input);
                    assert!(err.reason.contains(reason), "{input:?}: {err}");
                }
                Ok(entry) => panic!("{input:?} should be refused, got {entry:?}"),
            }
        }
    }

    #[test]
    fn an_entry_covers_another_when_it_allows_every_request_the_other_allows() {
        // (operator entry, client entry, covered)
        let rows: &[(&str, &str, bool)] = &[
            ("api.example.com", "api.example.com", true),
            ("api.example.com", "https://api.example.com", true),
            ("api.example.com", "http://API.example.com.", true),
            ("https://api.example.com", "api.example.com", false),
            (
                "https://api.example.com",
                "https://api.example.com:443",
                true,
            ),
            (
                "https://api.example.com",
                "https://api.example.com:8443",
                false,
            ),
            ("api.example.com", "api.example.com:8080", false),
            ("api.example.com:8080", "http://api.example.com:8080", true),
            ("api.example.com:8080", "api.example.com:8080", true),
            ("http://api.example.com:8080", "api.example.com:8080", false),
            ("api.example.com", "other.example.com", false),
            ("api.example.com", "*.api.example.com", false),
            ("*.example.com", "api.example.com", true),
            ("*.example.com", "a.b.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "*.example.com", true),
            ("*.example.com", "*.api.example.com", true),
            ("*.api.example.com", "*.example.com", false),
            ("*.example.com", "badexample.com", false),
            ("*.example.com", "api.example.com.evil.net", false),
            ("https://*.example.com", "api.example.com", false),
            ("127.0.0.1:8080", "http://127.0.0.1:8080", true),
            ("127.0.0.1:8080", "0x7f.1:8080", true),
            ("127.0.0.1:8080", "127.0.0.2:8080", false),
            ("127.0.0.1:8080", "localhost:8080", false),
            ("[::1]:8080", "http://[0::1]:8080", true),
            ("*.example.com", "127.0.0.1", false),
        ];
        for (operator, client, covered) in rows {
            let operator = AllowEntry::parse(operator).unwrap();
            let client = AllowEntry::parse(client).unwrap();
            assert_eq!(
                operator.covers(&client),
                *covered,
                "{} covering {}",
                operator.as_str(),
                client.as_str()
            );
        }
    }

    #[test]
    fn the_scheme_rule() {
        use Scheme::{Http, Https};
        // (entry, scheme, port, allowed)
        let rows: &[(&str, Scheme, u16, bool)] = &[
            ("example.com", Https, 443, true),
            ("example.com", Http, 80, true),
            ("example.com", Https, 80, false),
            ("example.com", Http, 443, false),
            ("example.com", Https, 8443, false),
            ("example.com:8080", Http, 8080, true),
            ("example.com:8080", Https, 8080, true),
            ("example.com:8080", Http, 80, false),
            ("https://example.com", Https, 443, true),
            ("https://example.com", Http, 80, false),
            ("http://example.com", Http, 80, true),
            ("http://example.com", Https, 443, false),
            ("https://example.com:8443", Https, 8443, true),
            ("https://example.com:8443", Https, 443, false),
            ("https://example.com:8443", Http, 8443, false),
        ];
        for (entry, scheme, port, allowed) in rows {
            let parsed = Entry::parse(entry).unwrap();
            assert_eq!(
                parsed.allows(*scheme, *port),
                *allowed,
                "{entry} with {scheme:?} on {port}"
            );
        }
    }
}
