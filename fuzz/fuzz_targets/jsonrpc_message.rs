//! JSON-RPC decoding on hostile bodies: `Message::parse` answers every body
//! with a message or a typed error, what it accepts survives a round trip,
//! and the params and results of every method decode without panicking.
#![no_main]

use goru_protocol::types::*;
use goru_protocol::{Message, codes, methods};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What must survive a round trip (params and results may hold floats,
/// which serde_json does not promise to read back bit for bit).
fn shape(message: &Message) -> (u8, String, String, Option<(i64, String)>) {
    match message {
        Message::Request(r) => (0, r.id.to_string(), r.method.clone(), None),
        Message::Notification(n) => (1, String::new(), n.method.clone(), None),
        Message::Response(r) => (
            2,
            r.id.as_ref().map(ToString::to_string).unwrap_or_default(),
            String::new(),
            r.result.as_ref().err().map(|e| (e.code, e.message.clone())),
        ),
    }
}

fn decode<T: DeserializeOwned + serde::Serialize>(value: &Value) {
    if let Ok(decoded) = serde_json::from_value::<T>(value.clone()) {
        // What a handler accepted serializes (results are sent this way).
        serde_json::to_vec(&decoded).expect("a decoded message serializes");
    }
}

fn decode_params(method: &str, params: &Value) {
    match method {
        methods::INITIALIZE => decode::<InitializeParams>(params),
        methods::SESSION_CREATE => decode::<SessionCreateParams>(params),
        methods::SESSION_RUN => decode::<SessionRunParams>(params),
        methods::SESSION_CLOSE => decode::<SessionCloseParams>(params),
        methods::RUN => decode::<RunParams>(params),
        methods::CANCEL_REQUEST => decode::<CancelParams>(params),
        methods::HOST_CALL => decode::<HostCallParams>(params),
        methods::RUN_OUTPUT => decode::<RunOutputParams>(params),
        _ => {
            // Any method name: try every params type, as a confused peer might.
            decode::<InitializeParams>(params);
            decode::<SessionCreateParams>(params);
            decode::<RunParams>(params);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let message = match Message::parse(data) {
        Ok(message) => message,
        Err(invalid) => {
            assert!(
                [
                    codes::PARSE_ERROR,
                    codes::INVALID_REQUEST,
                    codes::INVALID_PARAMS
                ]
                .contains(&invalid.error.code),
                "{invalid:?}"
            );
            return;
        }
    };
    let again = Message::parse(&message.to_json()).expect("what was accepted is sent back valid");
    assert_eq!(shape(&again), shape(&message));
    match &message {
        Message::Request(r) => decode_params(&r.method, r.params.as_ref().unwrap_or(&Value::Null)),
        Message::Notification(n) => {
            decode_params(&n.method, n.params.as_ref().unwrap_or(&Value::Null))
        }
        Message::Response(r) => {
            if let Ok(result) = &r.result {
                decode::<InitializeResult>(result);
                decode::<SessionCreateResult>(result);
                decode::<RunResult>(result);
                decode::<SessionListResult>(result);
            }
        }
    }
});
