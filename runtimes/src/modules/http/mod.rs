//! `http`: requests from the guest, made by the host with reqwest, only to
//! the hosts the session allows.
//!
//! The guest sends `goru:http.request` with
//! `{method, url, headers: [[name, value]...], body_base64?, timeout_ms?}` and
//! gets `{status, url, headers: [[name, value]...], body_base64}` back (`url`
//! is the final one, after redirects; a repeated header stays repeated, its
//! values in the order received, grouped by name).
//!
//! What keeps a guest from reaching what it should not (see `policy.rs`):
//! - the URL, and every redirect, must match an allow-list entry;
//! - host names are resolved by our own resolver, which drops loopback,
//!   private, link-local and other non-public addresses unless an entry
//!   names the address literally; the addresses it returns are the ones
//!   connected to, so a name cannot be re-pointed between check and use;
//! - no proxy from the environment, no cookies, no `Referer`, no retries, no
//!   decompression (a small compressed body cannot become a huge one);
//! - request and response bodies, headers, and the number of redirects are
//!   capped, and every request has a timeout.
//!
//! The session holds one client (one connection pool) for all its runs.

pub(crate) mod policy;

use super::{Module, ModuleError, Setup, SetupResult};
use crate::{Capabilities, CapabilityError, HttpCapability};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use policy::{AddressRefused, AllowList, Denied};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url, redirect};
use serde::Deserialize;
use serde_json::{Value, json};
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Request headers a guest may send: at most this many...
const MAX_REQUEST_HEADERS: usize = 100;
/// ...and this many bytes of names and values together.
const MAX_REQUEST_HEADER_BYTES: usize = 64 << 10;
/// Bytes of response header names and values the host passes on; a server
/// could otherwise fill the guest's reply with headers.
const MAX_RESPONSE_HEADER_BYTES: usize = 64 << 10;
/// Headers the client manages itself. `Host` in particular: the request
/// goes to the host the URL names, which is the host that was checked.
const FORBIDDEN_REQUEST_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The module's state, when the capabilities allow a host.
pub(crate) fn setup(capabilities: &Capabilities, setup: &Setup) -> SetupResult {
    let Some(capability) = &capabilities.http else {
        return Ok(None);
    };
    let http = Http::new(capability, setup.limits.max_host_payload_bytes)?;
    Ok(http.map(|http| Box::new(http) as Box<dyn Module>))
}

#[async_trait::async_trait]
impl Module for Http {
    async fn call(&self, function: &str, args: Value) -> Result<Value, ModuleError> {
        Http::call(self, function, args).await
    }
}

/// The too-many-redirects error our redirect policy raises.
#[derive(Debug, thiserror::Error)]
#[error("more than {0} redirects")]
struct TooManyRedirects(u32);

/// A session's HTTP client.
pub(crate) struct Http {
    allow: Arc<AllowList>,
    capability: HttpCapability,
    client: reqwest::Client,
    max_payload_bytes: u64,
}

/// Resolves names with the system resolver and drops the addresses the
/// allow-list refuses; see the module documentation.
struct CheckedResolver {
    allow: Arc<AllowList>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match allow.check_address(&host, addr.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .collect();
            match (kept.is_empty(), refused) {
                (true, Some(refused)) => Err(Box::new(refused) as Box<dyn StdError + Send + Sync>),
                _ => Ok(Box::new(kept.into_iter()) as Addrs),
            }
        })
    }
}

/// What the guest sends.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestArgs {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body_base64: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

fn value_error(message: impl Into<String>) -> ModuleError {
    ModuleError::new("ValueError", message)
}

impl Http {
    /// The session's client (`capability` was checked by
    /// [`crate::check_capabilities`]); `None` when no host is allowed (the
    /// module is off).
    pub(crate) fn new(
        capability: &HttpCapability,
        max_payload_bytes: u64,
    ) -> Result<Option<Self>, crate::Error> {
        let allow = Arc::new(AllowList::new(
            capability.entries().map_err(CapabilityError::from)?,
        ));
        if allow.is_empty() {
            return Ok(None);
        }
        let policy_allow = allow.clone();
        let max_redirects = capability.max_redirects;
        let redirects = redirect::Policy::custom(move |attempt| {
            // `previous` holds the first URL and every redirect followed so far.
            if attempt.previous().len() > max_redirects as usize {
                return attempt.error(TooManyRedirects(max_redirects));
            }
            match policy_allow.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(denied) => attempt.error(denied),
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .referer(false)
            .retry(reqwest::retry::never())
            .redirect(redirects)
            .dns_resolver(CheckedResolver {
                allow: allow.clone(),
            })
            .http1_only()
            .user_agent(concat!("goru/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(4)
            .tls_backend_preconfigured(tls_config()?)
            .build()
            .map_err(|e| crate::Error::HttpClient(error_chain(&e)))?;
        Ok(Some(Http {
            allow,
            capability: capability.clone(),
            client,
            max_payload_bytes,
        }))
    }

    pub(crate) async fn call(&self, function: &str, args: Value) -> Result<Value, ModuleError> {
        match function {
            "request" => {
                let args: RequestArgs = serde_json::from_value(args)
                    .map_err(|e| ModuleError::new("TypeError", format!("http.request: {e}")))?;
                self.request(args).await
            }
            _ => Err(ModuleError::new(
                "AttributeError",
                format!("http has no function `{function}`"),
            )),
        }
    }

    async fn request(&self, args: RequestArgs) -> Result<Value, ModuleError> {
        let method = args.method.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(value_error(format!(
                "unsupported HTTP method `{}` (use one of {})",
                args.method.escape_debug(),
                METHODS.join(", ")
            )));
        }
        let method =
            Method::from_bytes(method.as_bytes()).map_err(|e| value_error(e.to_string()))?;
        let url = Url::parse(&args.url)
            .map_err(|e| value_error(format!("invalid URL `{}`: {e}", args.url.escape_debug())))?;
        // Checked here as well as by the redirect policy: an IP literal never
        // reaches the resolver, and nothing should be sent for a refused URL.
        self.allow.check_url(&url).map_err(permission_error)?;
        let headers = request_headers(&args.headers)?;
        let body = self.request_body(args.body_base64.as_deref())?;
        let timeout = match args.timeout_ms {
            Some(ms) => Duration::from_millis(ms).min(self.capability.timeout),
            None => self.capability.timeout,
        };
        let mut request = self.client.request(method, url.clone()).headers(headers);
        if let Some(body) = body {
            request = request.body(body);
        }
        let exchange = async {
            let response = request.send().await.map_err(|e| request_error(&url, &e))?;
            self.read_response(response).await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(timeout_error(&url, timeout)),
        }
    }

    fn request_body(&self, body_base64: Option<&str>) -> Result<Option<Vec<u8>>, ModuleError> {
        let Some(encoded) = body_base64 else {
            return Ok(None);
        };
        let limit = self.capability.max_request_bytes;
        // Refuse before decoding: base64 is 4 characters per 3 bytes.
        if (encoded.len() as u64 / 4).saturating_mul(3) > limit.saturating_add(3) {
            return Err(request_too_large(encoded.len() as u64 / 4 * 3, limit));
        }
        let body = BASE64
            .decode(encoded)
            .map_err(|e| value_error(format!("the request body is not valid base64: {e}")))?;
        if body.len() as u64 > limit {
            return Err(request_too_large(body.len() as u64, limit));
        }
        Ok(Some(body))
    }

    async fn read_response(&self, mut response: reqwest::Response) -> Result<Value, ModuleError> {
        let final_url = response.url().clone();
        let mut header_bytes = 0;
        let mut headers = Vec::with_capacity(response.headers().len());
        for (name, value) in response.headers() {
            header_bytes += name.as_str().len() + value.len();
            if header_bytes > MAX_RESPONSE_HEADER_BYTES {
                return Err(value_error(format!(
                    "the response headers of `{final_url}` are larger than the limit of \
                     {MAX_RESPONSE_HEADER_BYTES} bytes"
                )));
            }
            headers.push((
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
        let status = response.status().as_u16();
        // What the reply costs without the body; the body must fit the rest
        // of one host call's payload, as base64.
        let head = json!({
            "status": status,
            "url": final_url.as_str(),
            "headers": headers,
            "body_base64": "",
        });
        let head_bytes = serde_json::to_string(&head).map_or(0, |s| s.len() as u64);
        let room = self.max_payload_bytes.saturating_sub(head_bytes) / 4 * 3;
        let limit = self.capability.max_response_bytes.min(room);
        let too_large = || {
            let why = if limit < self.capability.max_response_bytes {
                format!(
                    "the most one host call can return: the host-call payload limit is {} \
                     bytes and base64 adds a third",
                    self.max_payload_bytes
                )
            } else {
                "the http `maxResponseBytes` limit".to_string()
            };
            value_error(format!(
                "the response body of `{final_url}` is larger than {limit} bytes ({why})"
            ))
        };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| request_error(&final_url, &e))?
        {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(json!({
            "status": status,
            "url": final_url.as_str(),
            "headers": headers,
            "body_base64": BASE64.encode(&body),
        }))
    }
}

fn request_too_large(bytes: u64, limit: u64) -> ModuleError {
    value_error(format!(
        "the request body of {bytes} bytes is larger than the limit of {limit} bytes"
    ))
}

fn request_headers(pairs: &[(String, String)]) -> Result<HeaderMap, ModuleError> {
    if pairs.len() > MAX_REQUEST_HEADERS {
        return Err(value_error(format!(
            "{} request headers are more than the limit of {MAX_REQUEST_HEADERS}",
            pairs.len()
        )));
    }
    let bytes: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_REQUEST_HEADER_BYTES {
        return Err(value_error(format!(
            "the request headers are {bytes} bytes, more than the limit of {MAX_REQUEST_HEADER_BYTES}"
        )));
    }
    let mut headers = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| value_error(format!("invalid header name `{}`", name.escape_debug())))?;
        if FORBIDDEN_REQUEST_HEADERS.contains(&header.as_str()) {
            return Err(value_error(format!(
                "the `{header}` header is set by the sandbox and cannot be sent"
            )));
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| value_error(format!("invalid value for header `{header}`")))?;
        headers.append(header, value);
    }
    Ok(headers)
}

fn permission_error(denied: Denied) -> ModuleError {
    ModuleError::new("PermissionError", format!("http: {denied}"))
}

fn timeout_error(url: &Url, timeout: Duration) -> ModuleError {
    ModuleError::new(
        "TimeoutError",
        format!("http: `{url}` did not answer within {timeout:?}"),
    )
}

/// Maps a reqwest error to the exception the guest sees: our own refusals
/// (from the redirect policy or the resolver) are found in its sources.
fn request_error(url: &Url, error: &reqwest::Error) -> ModuleError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(denied) = current.downcast_ref::<Denied>() {
            // Only the redirect policy raises `Denied` inside reqwest; the
            // error's URL is the one that redirected.
            let from = error.url().unwrap_or(url);
            return ModuleError::new(
                "PermissionError",
                format!("http: redirected from `{from}`: {denied}"),
            );
        }
        if let Some(refused) = current.downcast_ref::<AddressRefused>() {
            return ModuleError::new(
                "PermissionError",
                format!("http: {refused} {}", literal_hint(url, refused)),
            );
        }
        if let Some(too_many) = current.downcast_ref::<TooManyRedirects>() {
            return value_error(format!(
                "http: `{url}` was redirected {too_many}, the limit"
            ));
        }
        source = current.source();
    }
    if error.is_timeout() {
        return ModuleError::new("TimeoutError", format!("http: `{url}` timed out"));
    }
    // The innermost cause says what happened ("Connection refused"); the
    // outer ones repeat the URL.
    let mut cause: &(dyn StdError + 'static) = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let message = if error.is_connect() {
        format!("http: could not connect to `{url}`: {cause}")
    } else {
        format!("http: the request to `{url}` failed: {cause}")
    };
    ModuleError::new("ConnectionError", message)
}

/// How to allow an address a name resolved to: the address itself, with
/// the request's scheme and port when the refused name is the URL's host.
fn literal_hint(url: &Url, refused: &AddressRefused) -> String {
    let address = match refused.address {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    if url.host_str() == Some(refused.host.as_str()) {
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "(to reach it, allow the address itself: `--allow-host {}://{address}{port}`)",
            url.scheme()
        )
    } else {
        format!("(to reach it, allow the address itself, as in `--allow-host https://{address}`)")
    }
}

/// An error and its sources, without repeats: `a: b: c`.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(current) = source {
        let text = current.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = current.source();
    }
    parts.join(": ")
}

/// TLS with rustls and ring, trusting Mozilla's root certificates (built in,
/// so a request behaves the same on every host and nothing is read from the
/// host's disk per session). HTTP/1.1 only.
fn tls_config() -> Result<rustls::ClientConfig, crate::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::Error::HttpClient(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(allow: &[&str]) -> Http {
        Http::new(&HttpCapability::allowing(allow.iter().copied()), 1 << 20)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn no_hosts_means_off_and_bad_entries_are_errors() {
        assert!(
            Http::new(&HttpCapability::default(), 1 << 20)
                .unwrap()
                .is_none()
        );
        let err = Http::new(&HttpCapability::allowing(["example.com/v1"]), 1 << 20)
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                crate::Error::Capability(CapabilityError::Http(crate::HttpConfigError::BadEntry {
                    index: 0,
                    ..
                }))
            ),
            "{err}"
        );
        let zero = HttpCapability {
            timeout: Duration::ZERO,
            ..HttpCapability::allowing(["https://example.com"])
        };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn capability_serde_uses_camel_case_and_defaults() {
        let cap: HttpCapability =
            serde_json::from_value(json!({"allow": ["https://a.example"], "timeoutMs": 500}))
                .unwrap();
        assert_eq!(cap.timeout, Duration::from_millis(500));
        assert_eq!(cap.max_redirects, 5);
        assert!(serde_json::from_value::<HttpCapability>(json!({"alow": []})).is_err());
    }

    #[tokio::test]
    async fn refusals_happen_before_any_connection() {
        let http = http(&["http://127.0.0.1:9"]);
        let call = |url: &str| {
            http.call(
                "request",
                json!({"method": "GET", "url": url, "headers": []}),
            )
        };
        for (url, kind) in [
            ("http://10.0.0.1/", "PermissionError"),
            ("http://169.254.169.254/latest/meta-data", "PermissionError"),
            ("http://localhost:9/", "PermissionError"),
            ("http://127.0.0.1:10/", "PermissionError"),
            ("file:///etc/passwd", "PermissionError"),
            ("not a url", "ValueError"),
        ] {
            let err = call(url).await.unwrap_err();
            assert_eq!(err.kind, kind, "{url}: {err:?}");
        }
        let err = http
            .call(
                "request",
                json!({"method": "CONNECT", "url": "http://127.0.0.1:9/"}),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, "ValueError");
        let err = http
            .call(
                "request",
                json!({"method": "GET", "url": "http://127.0.0.1:9/", "headers": [["Host", "x"]]}),
            )
            .await
            .unwrap_err();
        assert!(err.message.contains("`host` header"), "{err:?}");
    }

    #[test]
    fn request_bodies_are_capped_before_decoding() {
        let mut cap = HttpCapability::allowing(["http://127.0.0.1:9"]);
        cap.max_request_bytes = 6;
        let http = Http::new(&cap, 1 << 20).unwrap().unwrap();
        assert_eq!(
            http.request_body(Some(&BASE64.encode(b"123456"))).unwrap(),
            Some(b"123456".to_vec())
        );
        let err = http
            .request_body(Some(&BASE64.encode(b"1234567")))
            .unwrap_err();
        assert!(err.message.contains("limit of 6 bytes"), "{err:?}");
        let err = http.request_body(Some(&"A".repeat(4000))).unwrap_err();
        assert_eq!(err.kind, "ValueError");
        assert!(http.request_body(Some("!!!!")).is_err());
    }
}
