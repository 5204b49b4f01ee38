//! Host functions a client serves: a guest's call becomes a `host/call`
//! request to whichever connection holds the client's id at that moment.

use crate::daemon::Inner;
use crate::peer::PeerError;
use crate::registry::RunContext;
use goru_protocol::Id;
use goru_protocol::method::HostCall;
use goru_protocol::types::HostCallParams;
use goru_runtimes::{HostFunctions, InvalidName};
use std::sync::{Arc, Weak};

/// The most host function names one client may declare.
pub(crate) const MAX_HOST_FUNCTIONS: usize = 256;

/// Checks names the way the engine will (so `initialize` can refuse them).
pub(crate) fn validate(names: &[String]) -> Result<(), InvalidName> {
    let mut probe = HostFunctions::new();
    for name in names {
        probe.register(name, |_| Ok(serde_json::Value::Null))?;
    }
    Ok(())
}

/// Functions forwarding each of `names` to `client_id`. They hold the daemon
/// weakly: sessions live inside it.
pub(crate) fn forwarding(
    daemon: Weak<Inner>,
    client_id: &str,
    names: &[String],
    context: Arc<RunContext>,
) -> HostFunctions {
    let mut functions = HostFunctions::new();
    for name in names {
        let daemon = daemon.clone();
        let client_id = client_id.to_string();
        let context = context.clone();
        let function_name = name.clone();
        let registered = functions.register_async(name, move |args| {
            let daemon = daemon.clone();
            let client_id = client_id.clone();
            let name = function_name.clone();
            let params = HostCallParams {
                session_id: context.session_id.clone(),
                request_id: context.request().unwrap_or(Id::Number(0)),
                name: name.clone(),
                args,
            };
            async move {
                let peer = daemon
                    .upgrade()
                    .and_then(|inner| inner.registry.peer(&client_id))
                    .ok_or_else(|| {
                        format!("host function `{name}`: its client is not connected")
                    })?;
                match peer.request::<HostCall>(params).await {
                    Ok(result) => Ok(result.0),
                    Err(PeerError::Rpc(error)) => Err(error.message),
                    Err(PeerError::BadResult(err)) => Err(format!(
                        "host function `{name}`: its client's answer is not a result: {err}"
                    )),
                    Err(PeerError::Closed) => Err(format!(
                        "host function `{name}`: its client disconnected before answering"
                    )),
                }
            }
        });
        // Names were checked by `validate` at `initialize`.
        debug_assert!(registered.is_ok());
    }
    functions
}
