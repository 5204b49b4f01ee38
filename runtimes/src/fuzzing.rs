//! Entry points for the fuzz targets in `fuzz/` (docs/fuzzing.md): the
//! crate-private host-call dispatcher and the `http` allow-list, reached
//! without a guest. Not part of the API.

use crate::host_calls::HostCalls;
use crate::host_functions::HostFunctions;
use crate::modules::{Modules, http::policy};
use crate::{Capabilities, Limits};
use std::net::IpAddr;
use std::sync::OnceLock;
use url::Url;

/// Runs one batch of guest host calls (name, arguments as JSON) through the
/// dispatcher a session uses, with `capabilities` and `limits`, and the
/// host functions `echo` (returns its arguments) and `fail` (an error).
/// `Err`: the capabilities could not be opened.
pub fn host_calls(
    capabilities: &Capabilities,
    limits: Limits,
    calls: Vec<(String, String)>,
) -> Result<Vec<Result<String, String>>, crate::Error> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the fuzz target")
    });
    let mut functions = HostFunctions::new();
    functions
        .register("echo", Ok)
        .and_then(|f| f.register("fail", |_| Err("failed".to_string())))
        .expect("valid names");
    let modules = Modules::new(capabilities, &limits)?;
    let calls_host = HostCalls::new(functions, modules, limits);
    Ok(runtime.block_on(calls_host.call_batch(calls)))
}

/// The `http` allow-list a session checks URLs and resolved addresses with.
pub struct AllowList(policy::AllowList);

impl AllowList {
    /// Parses `--allow-host` entries (the `allow` of the capability).
    pub fn parse(entries: &[String]) -> Result<Self, crate::BadEntry> {
        policy::AllowList::parse(entries).map(AllowList)
    }

    /// Whether `url` may be requested (the first request and each redirect).
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        self.0.check_url(url).map_err(|denied| denied.to_string())
    }

    /// Whether the name `host`, resolved to `address`, may be connected to.
    pub fn check_address(&self, host: &str, address: IpAddr) -> Result<(), String> {
        self.0
            .check_address(host, address)
            .map_err(|refused| refused.to_string())
    }
}

/// The kind of a non-public address, `None` for a public one.
pub fn restricted(address: IpAddr) -> Option<&'static str> {
    policy::restricted(address)
}
