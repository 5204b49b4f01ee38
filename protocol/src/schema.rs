//! The JSON Schema of the protocol, generated from the types in this crate.
//! docs/protocol.schema.json is this output; a test fails when it is stale
//! (regenerate with `GORU_BLESS=1 cargo test -p goru-protocol --test schema`).

use crate::{ErrorObject, codes, methods, types::*};
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

/// Who sends a method.
enum Direction {
    ClientToDaemon,
    DaemonToClient,
}

struct Method {
    name: &'static str,
    direction: Direction,
    /// `None`: a notification (no result).
    params: Value,
    result: Option<Value>,
}

/// The whole schema: every type under `$defs`, and under `methods` each
/// method's direction, params and result.
pub fn schema() -> Value {
    let mut generator: SchemaGenerator = SchemaSettings::draft2020_12().into_generator();
    let mut of = |f: fn(&mut SchemaGenerator) -> schemars::Schema| f(&mut generator).to_value();
    fn s<T: JsonSchema>(g: &mut SchemaGenerator) -> schemars::Schema {
        g.subschema_for::<T>()
    }
    let null = json!({"type": "null"});
    let list = [
        Method {
            name: methods::INITIALIZE,
            direction: Direction::ClientToDaemon,
            params: of(s::<InitializeParams>),
            result: Some(of(s::<InitializeResult>)),
        },
        Method {
            name: methods::SESSION_CREATE,
            direction: Direction::ClientToDaemon,
            params: of(s::<SessionCreateParams>),
            result: Some(of(s::<SessionCreateResult>)),
        },
        Method {
            name: methods::SESSION_RUN,
            direction: Direction::ClientToDaemon,
            params: of(s::<SessionRunParams>),
            result: Some(of(s::<RunResult>)),
        },
        Method {
            name: methods::SESSION_CLOSE,
            direction: Direction::ClientToDaemon,
            params: of(s::<SessionCloseParams>),
            result: Some(null.clone()),
        },
        Method {
            name: methods::SESSION_LIST,
            direction: Direction::ClientToDaemon,
            params: null.clone(),
            result: Some(of(s::<SessionListResult>)),
        },
        Method {
            name: methods::RUN,
            direction: Direction::ClientToDaemon,
            params: of(s::<RunParams>),
            result: Some(of(s::<RunResult>)),
        },
        Method {
            name: methods::CANCEL_REQUEST,
            direction: Direction::ClientToDaemon,
            params: of(s::<CancelParams>),
            result: None,
        },
        Method {
            name: methods::SHUTDOWN,
            direction: Direction::ClientToDaemon,
            params: null.clone(),
            result: Some(null.clone()),
        },
        Method {
            name: methods::EXIT,
            direction: Direction::ClientToDaemon,
            params: null.clone(),
            result: None,
        },
        Method {
            name: methods::HOST_CALL,
            direction: Direction::DaemonToClient,
            params: of(s::<HostCallParams>),
            result: Some(json!({"description": "any JSON value: what the guest's call returns"})),
        },
        Method {
            name: methods::RUN_OUTPUT,
            direction: Direction::DaemonToClient,
            params: of(s::<RunOutputParams>),
            result: None,
        },
    ];
    let error = of(s::<ErrorObject>);
    let mut methods_out = Map::new();
    for method in list {
        let mut entry = Map::new();
        entry.insert(
            "direction".into(),
            match method.direction {
                Direction::ClientToDaemon => "clientToDaemon",
                Direction::DaemonToClient => "daemonToClient",
            }
            .into(),
        );
        entry.insert(
            "kind".into(),
            if method.result.is_some() {
                "request"
            } else {
                "notification"
            }
            .into(),
        );
        entry.insert("params".into(), method.params);
        if let Some(result) = method.result {
            entry.insert("result".into(), result);
        }
        methods_out.insert(method.name.into(), Value::Object(entry));
    }
    let error_codes: Map<String, Value> = codes::ALL
        .iter()
        .map(|(code, name)| (name.to_string(), (*code).into()))
        .collect();
    let defs = generator.take_definitions(true);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://goru.invalid/protocol.schema.json",
        "title": "goru daemon protocol",
        "description": format!(
            "JSON-RPC 2.0 over LSP-style framing; protocol version {}. See docs/protocol.md.",
            crate::PROTOCOL_VERSION
        ),
        "methods": methods_out,
        "error": error,
        "errorCodes": error_codes,
        "$defs": defs,
    })
}
