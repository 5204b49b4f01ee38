//! The `http` allow-list and address policy on hostile entries, URLs and
//! addresses: an address refused for host names (loopback, private,
//! link-local, metadata, ...) is reachable only when an entry names that
//! very address, whether the guest writes it as a URL's host or a name
//! resolves to it, in any of its spellings.
//!
//! Input: allow-list entries, one per line, a `---` line, then URLs one
//! per line; each URL line's bytes also make addresses to resolve to.
#![no_main]

use goru_runtimes::fuzzing::{AllowList, restricted};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The IP literal an entry names, read independently of the allow-list:
/// a URL's host, or for the forms without a scheme (`host`, `host:port`,
/// `[v6]:port`) the host of the same text after `http://`.
fn entry_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let url = if entry.contains("://") {
        Url::parse(entry)
    } else {
        Url::parse(&format!("http://{entry}"))
    };
    match url.ok()?.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

fn named(entries: &[String], ip: IpAddr) -> bool {
    entries
        .iter()
        .filter_map(|e| entry_ip(e))
        .any(|listed| listed.to_canonical() == ip.to_canonical())
}

/// Addresses made from a line's bytes: as IPv4, as IPv6, and the IPv4 one
/// in its IPv6 spellings (mapped and compatible), which must be judged the
/// same.
fn addresses(bytes: &[u8]) -> Vec<IpAddr> {
    let mut v6 = [0u8; 16];
    for (slot, byte) in v6.iter_mut().zip(bytes) {
        *slot = *byte;
    }
    let v4 = Ipv4Addr::new(v6[0], v6[1], v6[2], v6[3]);
    vec![
        IpAddr::V4(v4),
        IpAddr::V6(Ipv6Addr::from(v6)),
        IpAddr::V6(v4.to_ipv6_mapped()),
    ]
}

fuzz_target!(|data: &[u8]| {
    let text = goru_fuzz::text(data);
    let (entries, urls) = goru_fuzz::sections(&text, "---");
    let Ok(allow) = AllowList::parse(&entries) else {
        return;
    };
    for line in urls.lines().take(16) {
        if let Ok(url) = Url::parse(line) {
            let ip = match url.host() {
                Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if allow.check_url(&url).is_ok() {
                assert!(matches!(url.scheme(), "http" | "https"), "{url}");
                if let Some(ip) = ip.filter(|ip| restricted(*ip).is_some()) {
                    assert!(named(&entries, ip), "{url} allowed without naming {ip}");
                }
            }
        }
        for address in addresses(line.as_bytes()) {
            let allowed = allow.check_address("fuzz.example", address).is_ok();
            if restricted(address.to_canonical()).is_some() {
                assert!(
                    !allowed || named(&entries, address),
                    "{address} allowed unnamed"
                );
            } else {
                assert!(allowed, "{address} is public");
            }
        }
    }
});
