//! The package index: project pages in the JSON simple API (PEP 691) or the
//! HTML one (PEP 503), and downloads checked against the index's sha256.

use crate::redact::{redact_parsed, redact_url};
use crate::{Error, Limits, Progress, progress::Event};
use pep508_rs::PackageName;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use url::Url;

/// PyPI's simple index, the default.
pub const DEFAULT_INDEX_URL: &str = "https://pypi.org/simple";

const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";

/// One file a project page lists.
#[derive(Clone, Debug)]
pub struct IndexFile {
    pub filename: String,
    pub url: Url,
    /// Lower-case hex, when the index gives one.
    pub sha256: Option<String>,
    pub requires_python: Option<String>,
    pub yanked: bool,
}

/// A client of one index.
#[derive(Clone)]
pub(crate) struct IndexClient {
    base: Url,
    http: reqwest::Client,
    limits: Limits,
}

impl IndexClient {
    pub(crate) fn new(index_url: &str, limits: Limits) -> Result<Self, Error> {
        let base = index_url_with_slash(index_url)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config()?)
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.request_timeout)
            .user_agent(concat!("goru/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| index_error(&base, format!("cannot create an HTTP client: {e}")))?;
        Ok(IndexClient { base, http, limits })
    }

    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// The files of project `name`.
    pub(crate) async fn project(&self, name: &PackageName) -> Result<Vec<IndexFile>, Error> {
        let page = self
            .base
            .join(&format!("{name}/"))
            .map_err(|e| index_error(&self.base, e))?;
        let response = self
            .http
            .get(page.clone())
            .header(ACCEPT, format!("{JSON_TYPE}, text/html;q=0.1"))
            .send()
            .await
            .map_err(|e| index_error(&page, describe(e)))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(Error::NotFound {
                name: name.to_string(),
                index: redact_parsed(&self.base),
            });
        }
        if !response.status().is_success() {
            return Err(index_error(&page, format!("HTTP {}", response.status())));
        }
        // Redirects may move the page: relative links resolve against where it is.
        let page = response.url().clone();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let body = read_limited(
            response,
            self.limits.max_index_page_bytes,
            &format!("the index page of `{name}`"),
            |_| {},
        )
        .await?;
        let files = if content_type.starts_with(JSON_TYPE)
            || content_type.starts_with("application/json")
        {
            parse_json_page(&page, &body)?
        } else {
            parse_html_page(&page, &body)?
        };
        Ok(files)
    }

    /// Downloads `file` and checks it against the index's sha256.
    pub(crate) async fn download(
        &self,
        file: &IndexFile,
        progress: &Arc<dyn Progress>,
    ) -> Result<Vec<u8>, Error> {
        let Some(expected) = &file.sha256 else {
            return Err(Error::MissingHash {
                file: file.filename.clone(),
            });
        };
        let response = self
            .http
            .get(file.url.clone())
            .send()
            .await
            .map_err(|e| index_error(&file.url, describe(e)))?;
        if !response.status().is_success() {
            return Err(index_error(
                &file.url,
                format!("HTTP {}", response.status()),
            ));
        }
        let total = response.content_length();
        progress.event(Event::Download {
            file: &file.filename,
            done: 0,
            total,
        });
        let bytes = read_limited(
            response,
            self.limits.max_download_bytes,
            &file.filename,
            |done| {
                progress.event(Event::Download {
                    file: &file.filename,
                    done,
                    total,
                })
            },
        )
        .await?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(Error::HashMismatch {
                file: file.filename.clone(),
                expected: expected.clone(),
                actual,
            });
        }
        progress.event(Event::Downloaded {
            file: &file.filename,
            bytes: bytes.len() as u64,
        });
        Ok(bytes)
    }
}

/// Checks an index URL without contacting it (or building a client):
/// http(s), a host, no query or fragment.
pub fn check_index_url(index_url: &str) -> Result<(), Error> {
    index_url_with_slash(index_url).map(drop)
}

/// The index URL as a base that relative joins extend (`.../simple/`).
fn index_url_with_slash(index_url: &str) -> Result<Url, Error> {
    let invalid = |reason: &str| Error::InvalidIndexUrl {
        url: redact_url(index_url),
        reason: reason.to_string(),
    };
    let mut url = Url::parse(index_url).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(invalid("only http and https index URLs are supported"));
    }
    if url.host_str().is_none() {
        return Err(invalid("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Reads a body up to `limit` bytes; past it, the error names `what`.
async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
    what: &str,
    mut on_chunk: impl FnMut(u64),
) -> Result<Vec<u8>, Error> {
    let too_large = || Error::TooLarge {
        what: what.to_string(),
        limit: format!("{limit} bytes"),
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let url = response.url().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| index_error(&url, describe(e)))?
    {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
        on_chunk(body.len() as u64);
    }
    Ok(body)
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
    /// `false`, `true`, or the reason (a string) it was yanked.
    #[serde(default)]
    yanked: serde_json::Value,
}

fn parse_json_page(page: &Url, body: &[u8]) -> Result<Vec<IndexFile>, Error> {
    let parsed: JsonPage = serde_json::from_slice(body).map_err(|e| Error::InvalidIndexPage {
        url: redact_parsed(page),
        reason: format!("not a PEP 691 project page: {e}"),
    })?;
    let mut files = Vec::with_capacity(parsed.files.len());
    for file in parsed.files {
        let Some(url) = file_url(page, &file.url) else {
            continue;
        };
        files.push(IndexFile {
            sha256: file.hashes.get("sha256").map(|h| h.to_ascii_lowercase()),
            requires_python: file.requires_python.filter(|s| !s.trim().is_empty()),
            yanked: match file.yanked {
                serde_json::Value::Bool(yanked) => yanked,
                serde_json::Value::String(_) => true,
                _ => false,
            },
            filename: file.filename,
            url,
        });
    }
    Ok(files)
}

/// A file's URL resolved against its page, without the fragment; only
/// http(s).
fn file_url(page: &Url, href: &str) -> Option<Url> {
    let mut url = page.join(href).ok()?;
    url.set_fragment(None);
    matches!(url.scheme(), "https" | "http").then_some(url)
}

/// PEP 503: one `<a href="URL#sha256=HEX" data-requires-python="...">` per
/// file; the file name is the last segment of the URL's path.
fn parse_html_page(page: &Url, body: &[u8]) -> Result<Vec<IndexFile>, Error> {
    let text = String::from_utf8_lossy(body);
    let mut files = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut at = 0;
    while let Some(offset) = lower[at..].find("<a") {
        let start = at + offset + 2;
        let Some(end) = lower[start..].find('>').map(|e| start + e) else {
            break;
        };
        at = end + 1;
        // `<abbr>` and the like are not anchors.
        if !text[start..].starts_with(|c: char| c.is_ascii_whitespace()) {
            continue;
        }
        let attributes = parse_attributes(&text[start..end]);
        let Some(href) = attributes.iter().find(|(k, _)| k == "href").map(|(_, v)| v) else {
            continue;
        };
        let sha256 = href
            .split_once('#')
            .and_then(|(_, fragment)| fragment.strip_prefix("sha256="))
            .map(str::to_ascii_lowercase);
        let Some(url) = file_url(page, href) else {
            continue;
        };
        let Some(filename) = url
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .map(percent_decode)
            .filter(|name| !name.is_empty())
        else {
            continue;
        };
        let attribute = |name: &str| {
            attributes
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        files.push(IndexFile {
            filename,
            url,
            sha256,
            requires_python: attribute("data-requires-python").filter(|s| !s.trim().is_empty()),
            yanked: attribute("data-yanked").is_some(),
        });
    }
    Ok(files)
}

/// `name="value"`, `name='value'`, `name=value` and bare `name`, with
/// names lower-cased and values unescaped.
fn parse_attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let bytes = tag.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        if name_start == i {
            break;
        }
        let name = tag[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let start = i + 1;
                let end = tag[start..]
                    .bytes()
                    .position(|b| b == quote)
                    .map_or(tag.len(), |p| start + p);
                value = unescape(&tag[start..end]);
                i = end + 1;
            } else {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = unescape(&tag[start..i]);
            }
        }
        out.push((name, value));
    }
    out
}

/// The character references an index page uses in attribute values.
fn unescape(value: &str) -> String {
    if !value.contains('&') {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = [bytes[i + 1], bytes[i + 2]];
            let hex = std::str::from_utf8(&hex).unwrap_or("00");
            out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn index_error(url: &Url, message: impl ToString) -> Error {
    Error::Index {
        url: redact_parsed(url),
        message: message.to_string(),
    }
}

/// reqwest's error with its causes (the cause says "connection refused"),
/// without the URL reqwest would print whole: the caller names it,
/// redacted.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut parts = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// TLS with rustls and ring, trusting Mozilla's roots and the system's
/// certificate store (`SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured), as
/// pip does: the installer works for the user, on the user's network.
fn tls_config() -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // A store that cannot be read leaves Mozilla's roots, as before.
    let native = rustls_native_certs::load_native_certs();
    for certificate in native.certs {
        let _ = roots.add(certificate);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Index {
            url: String::new(),
            message: format!("TLS set-up failed: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_urls_get_a_trailing_slash_and_bad_ones_are_refused() {
        assert_eq!(
            index_url_with_slash("https://pypi.org/simple")
                .unwrap()
                .as_str(),
            "https://pypi.org/simple/"
        );
        for bad in [
            "ftp://x/simple",
            "file:///etc",
            "not a url",
            "https://x/simple?q=1",
        ] {
            assert!(index_url_with_slash(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn html_pages_parse_hashes_requires_python_and_yanked() {
        let page = Url::parse("https://mirror.example/simple/demo/").unwrap();
        let html = br#"<!DOCTYPE html><html><body><h1>Links</h1>
            <a href="../../files/demo-1.0-py3-none-any.whl#sha256=ABCD" data-requires-python="&gt;=3.8">demo-1.0-py3-none-any.whl</a><br/>
            <A HREF='https://files.example/demo-2.0.tar.gz#sha256=ef' data-yanked="">demo-2.0.tar.gz</A>
            <abbr title="x">not a link</abbr>
            <a href="demo%2B1-3.0-py3-none-any.whl">no hash</a>
        </body></html>"#;
        let files = parse_html_page(&page, html).unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].filename, "demo-1.0-py3-none-any.whl");
        assert_eq!(
            files[0].url.as_str(),
            "https://mirror.example/files/demo-1.0-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some("abcd"));
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.8"));
        assert!(!files[0].yanked);
        assert!(files[1].yanked);
        assert_eq!(files[2].filename, "demo+1-3.0-py3-none-any.whl");
        assert_eq!(files[2].sha256, None);
    }

    #[test]
    fn json_pages_resolve_relative_urls_and_drop_other_schemes() {
        let page = Url::parse("https://mirror.example/simple/demo/").unwrap();
        let json = br#"{"meta": {"api-version": "1.1"}, "name": "demo", "files": [
            {"filename": "demo-1.0-py3-none-any.whl", "url": "../../f/demo-1.0-py3-none-any.whl", "hashes": {"sha256": "AB"}, "yanked": "broken"},
            {"filename": "demo-0.9-py3-none-any.whl", "url": "file:///etc/passwd", "hashes": {}}
        ]}"#;
        let files = parse_json_page(&page, json).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(
            files[0].url.as_str(),
            "https://mirror.example/f/demo-1.0-py3-none-any.whl"
        );
        assert!(files[0].yanked);
        assert_eq!(files[0].sha256.as_deref(), Some("ab"));
    }
}
