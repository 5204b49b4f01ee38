//! `session/create`'s capabilities and limits as a hostile client sends
//! them, through the daemon's conversion and the engine's checks: each is
//! accepted or refused with `InvalidParams`/`LimitExceeded`, what is
//! accepted is within the daemon's ceiling, and accepted capabilities mean
//! the same after a round trip through their JSON form.
//!
//! Input: the `limits` object, a `---` line, then the `capabilities`
//! object (or the `capabilities` object alone).
#![no_main]

use goru_daemon::fuzzing;
use goru_protocol::codes;
use goru_protocol::types as wire;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn check_limits(json: &str) {
    let Ok(asked) = serde_json::from_str::<wire::Limits>(json) else {
        return;
    };
    let ceiling = goru_runtimes::Limits::default();
    match fuzzing::limits(&asked, &ceiling) {
        Ok(limits) => {
            assert!(limits.timeout <= ceiling.timeout);
            assert!(limits.memory_bytes <= ceiling.memory_bytes);
            assert!(limits.max_output_bytes <= ceiling.max_output_bytes);
            assert!(limits.max_host_calls <= ceiling.max_host_calls);
            assert!(limits.max_host_payload_bytes <= ceiling.max_host_payload_bytes);
            assert!(limits.max_batch_calls <= ceiling.max_batch_calls);
            assert!(limits.max_concurrent_host_calls <= ceiling.max_concurrent_host_calls);
            assert!(limits.max_batch_result_bytes <= ceiling.max_batch_result_bytes);
            limits.validate().expect("accepted limits are valid");
        }
        Err(err) => assert!(
            [codes::INVALID_PARAMS, codes::LIMIT_EXCEEDED].contains(&err.code),
            "{err:?}"
        ),
    }
}

fn check_capabilities(json: &str) {
    let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(json) else {
        return;
    };
    match fuzzing::capabilities(&value) {
        Ok(capabilities) => {
            let value = serde_json::to_value(&capabilities).expect("capabilities serialize");
            let again: wire::Capabilities =
                serde_json::from_value(value).expect("serialized capabilities read back");
            assert_eq!(again, capabilities, "a round trip changed the capabilities");
            goru_runtimes::check_capabilities(&again, goru_runtimes::Language::Python)
                .expect("accepted capabilities stay valid");
            for mount in &capabilities.mounts {
                assert!(mount.host.is_absolute() && mount.guest.starts_with('/'));
            }
        }
        // Malformed, or a limit inside a capability above the daemon's ceiling
        // (which the error names).
        Err(err) if err.code == codes::LIMIT_EXCEEDED => {
            let data = err.data.as_ref().expect("a limit error names the limit");
            assert!(data["limit"].is_string() && data["max"].is_u64(), "{err:?}");
        }
        Err(err) => assert_eq!(err.code, codes::INVALID_PARAMS, "{err:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = goru_fuzz::text(data);
    let (limits, capabilities) = goru_fuzz::sections(&text, "---");
    check_limits(&limits.join("\n"));
    check_capabilities(&capabilities);
});
