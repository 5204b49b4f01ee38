//! The JSON Schema of the protocol, generated from the types in this crate.
//! docs/protocol.schema.json is this output; a test fails when it is stale
//! (regenerate with `GORU_BLESS=1 cargo test -p goru-protocol --test schema`).

use crate::method::{self, Direction, Kind};
use crate::{ErrorObject, codes};
use schemars::{SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

/// The whole schema: every type under `$defs`, and under `methods` each
/// method of [`method::ALL`] with its direction, params and result.
pub fn schema() -> Value {
    let mut generator: SchemaGenerator = SchemaSettings::draft2020_12().into_generator();
    let mut methods_out = Map::new();
    for method in method::ALL {
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
            match method.kind {
                Kind::Request => "request",
                Kind::Notification => "notification",
            }
            .into(),
        );
        entry.insert("params".into(), (method.params)(&mut generator).to_value());
        if let Some(result) = method.result {
            entry.insert("result".into(), result(&mut generator).to_value());
        }
        methods_out.insert(method.name.into(), Value::Object(entry));
    }
    let error = generator.subschema_for::<ErrorObject>().to_value();
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
