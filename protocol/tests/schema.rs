//! docs/protocol.schema.json must be what the types generate.

use std::path::PathBuf;

#[test]
fn the_committed_schema_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.schema.json");
    let generated = serde_json::to_string_pretty(&goru_protocol::schema::schema()).unwrap() + "\n";
    if std::env::var_os("GORU_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/protocol.schema.json is stale: regenerate it with \
         `GORU_BLESS=1 cargo test --release -p goru-protocol --test schema` and commit it"
    );
}

#[test]
fn the_schema_describes_every_method_and_code() {
    let schema = goru_protocol::schema::schema();
    let methods = schema["methods"].as_object().unwrap();
    for name in [
        "initialize",
        "session/create",
        "session/run",
        "session/close",
        "session/list",
        "run",
        "$/cancelRequest",
        "shutdown",
        "exit",
        "host/call",
        "run/output",
    ] {
        assert!(methods.contains_key(name), "{name} missing");
    }
    assert_eq!(methods["exit"]["kind"], "notification");
    assert_eq!(methods["host/call"]["direction"], "daemonToClient");
    let defs = schema["$defs"].as_object().unwrap();
    for name in [
        "InitializeParams",
        "RunResult",
        "SessionRunParams",
        "Exception",
        "OutcomeKind",
    ] {
        assert!(defs.contains_key(name), "{name} missing from $defs");
    }
    assert_eq!(schema["errorCodes"]["SessionBusy"], -32003);
}
