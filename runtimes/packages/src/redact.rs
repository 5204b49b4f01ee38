//! URLs as they may appear in a message: without credentials.
//!
//! An index URL may carry a user name and token (`https://user:token@host/`),
//! and a file URL an index hands out may carry a signature in its query.
//! Install errors reach sandboxed code (`install_pkg`), logs and terminals,
//! so every URL formatted into an error goes through [`redact_url`] first.

use url::Url;

/// What stands in for a removed secret.
const REDACTED: &str = "***";

/// `url` with its user name and password replaced by `***`, and the value
/// of every query parameter too (presigned download links carry their
/// signature there). Text that does not parse as a URL loses everything
/// between `://` and the last `@` before the path.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) => redact_parsed(&parsed),
        Err(_) => redact_text(url),
    }
}

pub(crate) fn redact_parsed(url: &Url) -> String {
    let mut url = url.clone();
    if !url.username().is_empty() || url.password().is_some() {
        // Only fails for URLs that cannot have credentials at all.
        let _ = url.set_password(None);
        let _ = url.set_username(REDACTED);
    }
    if url.query().is_some() {
        let pairs: Vec<String> = url
            .query_pairs()
            .map(|(name, value)| {
                if value.is_empty() {
                    name.into_owned()
                } else {
                    format!("{name}={REDACTED}")
                }
            })
            .collect();
        url.set_query(Some(&pairs.join("&")));
    }
    url.to_string()
}

fn redact_text(text: &str) -> String {
    let Some(scheme_end) = text.find("://").map(|i| i + 3) else {
        return text.to_string();
    };
    let rest = &text[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let text = match authority.rfind('@') {
        Some(at) => format!(
            "{}{REDACTED}{}",
            &text[..scheme_end],
            &text[scheme_end + at..]
        ),
        None => text.to_string(),
    };
    match text.split_once('?') {
        Some((before, _)) => format!("{before}?{REDACTED}"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn credentials_and_query_values_are_replaced_and_the_rest_kept() {
        let cases = [
            (
                "https://user:token@mirror.example/simple/",
                "https://***@mirror.example/simple/",
            ),
            (
                "https://token@mirror.example/simple",
                "https://***@mirror.example/simple",
            ),
            (
                "https://files.example/a.whl?X-Sig=abc&token=t&flag",
                "https://files.example/a.whl?X-Sig=***&token=***&flag",
            ),
            ("https://pypi.org/simple/", "https://pypi.org/simple/"),
            // Not a URL the parser takes: still no secret.
            ("http://us er:tok en@host/simple", "http://***@host/simple"),
            ("http://host:99999/x?token=t", "http://host:99999/x?***"),
            ("not a url", "not a url"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_url(input), expected, "{input}");
        }
    }
}
