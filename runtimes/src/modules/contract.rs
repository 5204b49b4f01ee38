//! What every module implements ([`Module`]) and what its set-up is given
//! ([`Setup`]): the contract between the module table and the modules.

use super::ModuleError;
use super::open_files::OpenFiles;
use crate::Limits;
use serde_json::Value;
use std::sync::Arc;

/// A module's state in one session: what its capability set up.
#[async_trait::async_trait]
pub(crate) trait Module: Send + Sync {
    /// Calls `function` of the module (`get` for `goru:kv.get`).
    async fn call(&self, function: &str, args: Value) -> Result<Value, ModuleError>;

    /// The largest JSON a call of `function` may carry, when the module's
    /// own limits allow more than the host-call payload limit; else 0.
    fn max_payload_bytes(&self, _function: &str) -> u64 {
        0
    }
}

/// What a module's set-up gives: its state for the session, `None` when the
/// capabilities leave it off.
pub(crate) type SetupResult = Result<Option<Box<dyn Module>>, crate::Error>;

/// What a module's set-up may use besides the capabilities.
pub(crate) struct Setup<'a> {
    pub limits: &'a Limits,
    /// The session's budget of open files, shared by `fs` and the guest's
    /// plain file calls.
    pub open_files: &'a Arc<OpenFiles>,
}
