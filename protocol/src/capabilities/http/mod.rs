//! The `http` capability: which hosts the guest may reach, and the limits
//! of each request. The engine's `http` module makes the requests.

mod entry;

pub use entry::{AllowEntry, BadEntry, Entry, HostPattern, Scheme, normalize_domain};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest `timeoutMs` may be: 7 days, the engine's longest timeout.
pub const MAX_HTTP_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The `http` capability: which hosts the guest may reach, and the limits of
/// each request. Defaults: no hosts (the module is off), request bodies up to
/// 1 MiB, response bodies up to 10 MiB, 5 redirects, 10 s per request.
///
/// A response body must also fit one host call's result: base64 makes it a
/// third larger, so with `Limits::max_host_payload_bytes` at its default of
/// 1 MiB a body can be at most about 760 KiB, whatever `max_response_bytes`
/// says. Raise both to receive more. Request bodies are likewise bounded by
/// the payload limit on the way in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct HttpCapability {
    /// Allowed hosts, each `host`, `host:port`, `*.host` (subdomains, not
    /// `host` itself), an IP address (`127.0.0.1:8080`, `[::1]:8080`), or a
    /// URL (`https://api.example.com[:port]`). Without a scheme both `https`
    /// and `http` are allowed; with one, only it. The port is the scheme's
    /// default unless written. See `entry.rs` for the grammar.
    pub allow: Vec<String>,
    /// The largest request body, in bytes.
    pub max_request_bytes: u64,
    /// The largest response body, in bytes (see above for the payload limit).
    pub max_response_bytes: u64,
    /// Redirects followed for one request; each is checked like the first URL.
    pub max_redirects: u32,
    /// The longest a request may take, from connecting to the last byte of
    /// the body, in milliseconds. The guest may ask for less, never more.
    /// The run's own timeout stops a request too.
    #[serde(rename = "timeoutMs", with = "millis")]
    #[schemars(with = "u64")]
    pub timeout: Duration,
}

impl Default for HttpCapability {
    fn default() -> Self {
        HttpCapability {
            allow: Vec::new(),
            max_request_bytes: 1 << 20,
            max_response_bytes: 10 << 20,
            max_redirects: 5,
            timeout: Duration::from_secs(10),
        }
    }
}

impl HttpCapability {
    /// The default limits with these allowed hosts.
    pub fn allowing<S: Into<String>>(hosts: impl IntoIterator<Item = S>) -> Self {
        HttpCapability {
            allow: hosts.into_iter().map(Into::into).collect(),
            ..HttpCapability::default()
        }
    }

    /// Checks every entry and limit (part of
    /// [`crate::capabilities::Capabilities::validate`]).
    pub fn validate(&self) -> Result<(), HttpConfigError> {
        self.entries()?;
        if self.timeout.is_zero() || self.timeout > MAX_HTTP_TIMEOUT {
            return Err(HttpConfigError::Timeout(self.timeout));
        }
        Ok(())
    }

    /// Every entry of `allow`, parsed; the first bad one with its index.
    pub fn entries(&self) -> Result<Vec<Entry>, HttpConfigError> {
        self.allow
            .iter()
            .enumerate()
            .map(|(index, text)| {
                Entry::parse(text).map_err(|error| HttpConfigError::BadEntry { index, error })
            })
            .collect()
    }
}

/// Why an `http` capability cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpConfigError {
    /// `allow[index]` is not an entry.
    #[error("{error}")]
    BadEntry { index: usize, error: BadEntry },
    #[error("the http timeout must be more than 0 and at most 7 days, not {0:?}")]
    Timeout(Duration),
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
