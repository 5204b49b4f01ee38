//! Between the wire types of goru-protocol and the engine's.

use crate::config::CapabilityLimits;
use crate::policy::{Policy, Refusal};
use goru_protocol::ErrorObject;
use goru_protocol::codes;
use goru_protocol::echo::{MAX_ECHO_CHARS, clip};
use goru_protocol::types::{self as wire, OutcomeKind, RunResult};
use goru_runtimes::{
    Capabilities, CapabilityError, HttpConfigError, Language, Limits, Mode, Outcome, Status,
};
use serde_json::{Value, json};
use std::time::Duration;

pub(crate) fn mode(mode: wire::Mode) -> Mode {
    match mode {
        wire::Mode::Exec => Mode::Exec,
        wire::Mode::Repl => Mode::Repl,
        wire::Mode::CheckComplete => Mode::CheckComplete,
    }
}

/// The wire form of the daemon's ceiling (every field set).
pub(crate) fn wire_limits(limits: &Limits) -> wire::Limits {
    wire::Limits {
        timeout_ms: Some(limits.timeout.as_millis() as u64),
        memory_bytes: Some(limits.memory_bytes),
        max_output_bytes: Some(limits.max_output_bytes),
        max_host_calls: Some(limits.max_host_calls),
        max_host_payload_bytes: Some(limits.max_host_payload_bytes),
        max_batch_calls: Some(limits.max_batch_calls),
        max_concurrent_host_calls: Some(limits.max_concurrent_host_calls),
        max_batch_result_bytes: Some(limits.max_batch_result_bytes),
        max_open_files: Some(limits.max_open_files),
    }
}

/// The limits a client asked for, each missing one taken from `ceiling`;
/// one above the ceiling is refused with `LimitExceeded`.
pub(crate) fn limits(asked: &wire::Limits, ceiling: &Limits) -> Result<Limits, ErrorObject> {
    fn pick(asked: Option<u64>, max: u64, name: &str) -> Result<u64, ErrorObject> {
        match asked {
            None => Ok(max),
            Some(value) => at_most(value, max, name).map(|()| value),
        }
    }
    let ceiling_ms = ceiling.timeout.as_millis() as u64;
    if asked.timeout_ms == Some(0) {
        return Err(zero_timeout("timeoutMs", ceiling_ms));
    }
    let limits = Limits {
        timeout: Duration::from_millis(pick(asked.timeout_ms, ceiling_ms, "timeoutMs")?),
        memory_bytes: pick(asked.memory_bytes, ceiling.memory_bytes, "memoryBytes")?,
        max_output_bytes: pick(
            asked.max_output_bytes,
            ceiling.max_output_bytes,
            "maxOutputBytes",
        )?,
        max_host_calls: pick(asked.max_host_calls, ceiling.max_host_calls, "maxHostCalls")?,
        max_host_payload_bytes: pick(
            asked.max_host_payload_bytes,
            ceiling.max_host_payload_bytes,
            "maxHostPayloadBytes",
        )?,
        max_batch_calls: pick(
            asked.max_batch_calls,
            ceiling.max_batch_calls,
            "maxBatchCalls",
        )?,
        max_concurrent_host_calls: pick(
            asked.max_concurrent_host_calls,
            ceiling.max_concurrent_host_calls,
            "maxConcurrentHostCalls",
        )?,
        max_batch_result_bytes: pick(
            asked.max_batch_result_bytes,
            ceiling.max_batch_result_bytes,
            "maxBatchResultBytes",
        )?,
        max_open_files: pick(asked.max_open_files, ceiling.max_open_files, "maxOpenFiles")?,
    };
    limits
        .validate()
        .map_err(|err| ErrorObject::new(codes::INVALID_PARAMS, err.to_string()))?;
    Ok(limits)
}

/// `LimitExceeded` naming the wire field, when `value` is above `max`.
fn at_most(value: u64, max: u64, name: &str) -> Result<(), ErrorObject> {
    if value <= max {
        return Ok(());
    }
    Err(ErrorObject::new(
        codes::LIMIT_EXCEEDED,
        format!("`{name}` {value} is above this daemon's maximum of {max}"),
    )
    .with_data(json!({"limit": name, "max": max})))
}

/// A timeout of 0, told in the client's unit (the engine's message would
/// say `0ns`).
fn zero_timeout(name: &str, max_ms: u64) -> ErrorObject {
    ErrorObject::new(
        codes::INVALID_PARAMS,
        format!(
            "`{name}` 0 is out of range: it must be at least 1 and at most {max_ms} (milliseconds)"
        ),
    )
}

/// The limits inside capabilities, each no higher than the daemon's
/// ceiling (as the run limits): a client may lower them, never raise them.
fn check_capability_limits(
    capabilities: &Capabilities,
    ceiling: &CapabilityLimits,
) -> Result<(), ErrorObject> {
    let fs = &capabilities.fs_limits;
    at_most(
        fs.max_read_bytes,
        ceiling.fs.max_read_bytes,
        "fsLimits.maxReadBytes",
    )?;
    at_most(
        fs.max_write_bytes,
        ceiling.fs.max_write_bytes,
        "fsLimits.maxWriteBytes",
    )?;
    if let Some(kv) = &capabilities.kv {
        let max = &ceiling.kv;
        at_most(kv.max_key_bytes, max.max_key_bytes, "kv.maxKeyBytes")?;
        at_most(kv.max_value_bytes, max.max_value_bytes, "kv.maxValueBytes")?;
        at_most(kv.max_entries, max.max_entries, "kv.maxEntries")?;
        at_most(kv.max_total_bytes, max.max_total_bytes, "kv.maxTotalBytes")?;
    }
    if let Some(http) = &capabilities.http {
        let max = &ceiling.http;
        let max_ms = max.timeout.as_millis() as u64;
        if http.timeout.is_zero() {
            return Err(zero_timeout("http.timeoutMs", max_ms));
        }
        at_most(
            http.max_request_bytes,
            max.max_request_bytes,
            "http.maxRequestBytes",
        )?;
        at_most(
            http.max_response_bytes,
            max.max_response_bytes,
            "http.maxResponseBytes",
        )?;
        at_most(
            u64::from(http.max_redirects),
            u64::from(max.max_redirects),
            "http.maxRedirects",
        )?;
        at_most(http.timeout.as_millis() as u64, max_ms, "http.timeoutMs")?;
    }
    Ok(())
}

/// The capabilities a client asked for, for a session in `language`: their
/// limits within `ceiling`, host paths absolute, valid (the one check the
/// CLI and the engine make too), each allowed by `policy`, and what they
/// name on the host usable. Unknown fields were refused when the params
/// were read.
pub(crate) fn capabilities(
    asked: &Capabilities,
    language: Language,
    ceiling: &CapabilityLimits,
    policy: &Policy,
) -> Result<Capabilities, ErrorObject> {
    let mut capabilities = asked.clone();
    check_capability_limits(&capabilities, ceiling)?;
    capabilities
        .require_absolute_paths()
        .map_err(|err| invalid(&err))?;
    capabilities
        .validate(language)
        .map_err(|err| invalid(&err))?;
    // Before the checks that look at the host: a path outside the policy
    // is refused the same whether it exists or not.
    policy.check(&mut capabilities).map_err(denied)?;
    goru_runtimes::check_capabilities(&capabilities, language).map_err(|err| invalid(&err))?;
    Ok(capabilities)
}

/// `InvalidParams` for capabilities that cannot be used: `data` names the
/// capability and the option at fault (`mounts[1].guest`), and a refused
/// `http` entry, clipped.
pub(crate) fn invalid(err: &CapabilityError) -> ErrorObject {
    let mut data = json!({"capability": err.capability().option(), "option": err.option()});
    if let CapabilityError::Http(HttpConfigError::BadEntry { error, .. }) = err {
        data["entry"] = Value::String(clip(&error.entry, MAX_ECHO_CHARS).into_owned());
    }
    ErrorObject::new(codes::INVALID_PARAMS, format!("capabilities: {err}")).with_data(data)
}

/// `CapabilityDenied`, its `data` naming the rule and what it refused.
fn denied(refusal: Refusal) -> ErrorObject {
    let mut data = json!({"policy": refusal.rule()});
    if let Some((field, value)) = refusal.subject() {
        data[field] = Value::String(clip(&value, MAX_ECHO_CHARS).into_owned());
    }
    ErrorObject::new(codes::CAPABILITY_DENIED, format!("capabilities: {refusal}")).with_data(data)
}

/// A run's result on the wire. `stdout`/`stderr` come from the daemon's
/// own sink (the engine's outcome holds none: output went to the sink).
pub(crate) fn run_result(
    outcome: &Outcome,
    stdout: String,
    stderr: String,
    session_alive: Option<bool>,
) -> RunResult {
    let status = &outcome.status;
    let (kind, value, exception, message) = match status {
        Status::Ok { value } => (OutcomeKind::Ok, value.clone(), None, None),
        Status::Incomplete => (OutcomeKind::Incomplete, None, None, None),
        Status::Exception(e) => (
            OutcomeKind::Exception,
            None,
            Some(wire::Exception {
                type_name: e.type_name.clone(),
                message: e.message.clone(),
                traceback: e.traceback.clone(),
            }),
            None,
        ),
        Status::Exit(_) => (OutcomeKind::Exit, None, None, None),
        Status::Timeout { limit } => (
            OutcomeKind::Timeout,
            None,
            None,
            Some(format!(
                "the run passed its time limit of {} ms",
                limit.as_millis()
            )),
        ),
        Status::MemoryLimit { limit } => (
            OutcomeKind::MemoryLimit,
            None,
            None,
            Some(format!(
                "the guest needed more than its memory limit of {limit} bytes"
            )),
        ),
        Status::OutputLimit { stream, limit } => (
            OutcomeKind::OutputLimit,
            None,
            None,
            Some(format!(
                "{} passed its limit of {limit} bytes; the run was stopped",
                stream.name()
            )),
        ),
        Status::Crashed { message } => (
            OutcomeKind::Crashed,
            None,
            None,
            Some(format!("the guest crashed: {message}")),
        ),
        Status::Cancelled => (
            OutcomeKind::Cancelled,
            None,
            None,
            Some("the run was cancelled".to_string()),
        ),
    };
    RunResult {
        outcome: kind,
        stdout,
        stderr,
        value,
        exception,
        clipped: outcome.clipped,
        exit_code: status.exit_code(),
        message,
        limit: limit_passed(status),
        trap: match status {
            Status::Crashed { message } => Some(message.clone()),
            _ => None,
        },
        duration_ms: outcome.duration.as_secs_f64() * 1000.0,
        session_alive,
    }
}

/// The limit a run ended at, for the result's `limit`.
fn limit_passed(status: &Status) -> Option<wire::LimitPassed> {
    let (name, value, stream) = match status {
        Status::Timeout { limit } => (
            wire::LimitName::TimeoutMs,
            u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            None,
        ),
        Status::MemoryLimit { limit } => (wire::LimitName::MemoryBytes, *limit, None),
        Status::OutputLimit { stream, limit } => (
            wire::LimitName::MaxOutputBytes,
            *limit,
            Some(wire_stream(*stream)),
        ),
        _ => return None,
    };
    Some(wire::LimitPassed {
        name,
        value,
        stream,
    })
}

/// The wire name of an output stream.
pub(crate) fn wire_stream(stream: goru_runtimes::Stream) -> wire::OutputStream {
    match stream {
        goru_runtimes::Stream::Stdout => wire::OutputStream::Stdout,
        goru_runtimes::Stream::Stderr => wire::OutputStream::Stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_limits_take_the_ceiling_and_higher_ones_are_refused() {
        let ceiling = Limits::default();
        let chosen = limits(&wire::Limits::default(), &ceiling).unwrap();
        assert_eq!(chosen, ceiling);
        let asked = wire::Limits {
            timeout_ms: Some(500),
            ..Default::default()
        };
        assert_eq!(
            limits(&asked, &ceiling).unwrap().timeout,
            Duration::from_millis(500)
        );
        let asked = wire::Limits {
            memory_bytes: Some(ceiling.memory_bytes + 1),
            ..Default::default()
        };
        let err = limits(&asked, &ceiling).unwrap_err();
        assert_eq!(err.code, codes::LIMIT_EXCEEDED);
        assert_eq!(err.data.unwrap()["limit"], "memoryBytes");
        let asked = wire::Limits {
            timeout_ms: Some(0),
            ..Default::default()
        };
        let err = limits(&asked, &ceiling).unwrap_err();
        assert_eq!(err.code, codes::INVALID_PARAMS);
        assert_eq!(
            err.message,
            "`timeoutMs` 0 is out of range: it must be at least 1 and at most 30000 (milliseconds)"
        );
    }

    #[test]
    fn max_open_files_is_asked_for_up_to_the_ceiling() {
        let ceiling = Limits {
            max_open_files: 8,
            ..Limits::default()
        };
        let asked = |n| wire::Limits {
            max_open_files: Some(n),
            ..Default::default()
        };
        assert_eq!(limits(&asked(8), &ceiling).unwrap().max_open_files, 8);
        assert_eq!(limits(&asked(0), &ceiling).unwrap().max_open_files, 0);
        assert_eq!(
            limits(&wire::Limits::default(), &ceiling)
                .unwrap()
                .max_open_files,
            8
        );
        let err = limits(&asked(9), &ceiling).unwrap_err();
        assert_eq!(err.code, codes::LIMIT_EXCEEDED);
        assert_eq!(err.data, Some(json!({"limit": "maxOpenFiles", "max": 8})));
        assert_eq!(wire_limits(&ceiling).max_open_files, Some(8));
    }

    #[test]
    fn a_capability_the_policy_refuses_is_capability_denied_naming_the_rule() {
        let ceiling = CapabilityLimits::default();
        let mut policy = Policy::closed();
        policy.allow_http_host("*.example.com").unwrap();
        let Value::Object(map) = json!({"http": {"allow": ["example.org"]}}) else {
            unreachable!()
        };
        let err = capabilities(&typed(map), Language::Python, &ceiling, &policy).unwrap_err();
        assert_eq!(err.code, codes::CAPABILITY_DENIED);
        assert_eq!(
            err.data,
            Some(json!({"policy": "httpHosts", "entry": "example.org"}))
        );
        // What is quoted back is clipped.
        let long = format!("{}.example.org", "a".repeat(10_000));
        let Value::Object(map) = json!({"http": {"allow": [long]}}) else {
            unreachable!()
        };
        let err = capabilities(&typed(map), Language::Python, &ceiling, &policy).unwrap_err();
        assert!(err.data.unwrap()["entry"].as_str().unwrap().chars().count() <= 101);
        // A path outside the roots is refused before its existence is looked at.
        let dir = tempfile::tempdir().unwrap();
        let mut policy = Policy::closed();
        policy.allow_mount_root(dir.path()).unwrap();
        let Value::Object(map) =
            json!({"mounts": [{"guest": "/data", "host": "/no/such/dir", "mode": "ro"}]})
        else {
            unreachable!()
        };
        let err = capabilities(&typed(map), Language::Python, &ceiling, &policy).unwrap_err();
        assert_eq!(err.code, codes::CAPABILITY_DENIED);
        assert_eq!(
            err.data,
            Some(json!({"policy": "mountRoots", "path": "/no/such/dir"}))
        );
    }

    fn capabilities_from(value: Value) -> Result<Capabilities, ErrorObject> {
        let Value::Object(map) = value else {
            panic!("an object")
        };
        capabilities(
            &typed(map),
            Language::Python,
            &CapabilityLimits::default(),
            &Policy::open(),
        )
    }

    #[test]
    fn limits_inside_capabilities_are_capped_at_the_ceiling_naming_the_field() {
        let ceiling = CapabilityLimits::default();
        for (asked, field, max) in [
            (
                json!({"fsLimits": {"maxReadBytes": ceiling.fs.max_read_bytes + 1}}),
                "fsLimits.maxReadBytes",
                ceiling.fs.max_read_bytes,
            ),
            (
                json!({"fsLimits": {"maxWriteBytes": u64::MAX}}),
                "fsLimits.maxWriteBytes",
                ceiling.fs.max_write_bytes,
            ),
            (
                json!({"kv": {"maxKeyBytes": ceiling.kv.max_key_bytes + 1}}),
                "kv.maxKeyBytes",
                ceiling.kv.max_key_bytes,
            ),
            (
                json!({"kv": {"maxValueBytes": ceiling.kv.max_value_bytes + 1}}),
                "kv.maxValueBytes",
                ceiling.kv.max_value_bytes,
            ),
            (
                json!({"kv": {"maxEntries": ceiling.kv.max_entries + 1}}),
                "kv.maxEntries",
                ceiling.kv.max_entries,
            ),
            (
                json!({"kv": {"maxTotalBytes": ceiling.kv.max_total_bytes + 1}}),
                "kv.maxTotalBytes",
                ceiling.kv.max_total_bytes,
            ),
            (
                json!({"http": {"allow": ["https://example.com"], "maxRequestBytes": ceiling.http.max_request_bytes + 1}}),
                "http.maxRequestBytes",
                ceiling.http.max_request_bytes,
            ),
            (
                json!({"http": {"allow": ["https://example.com"], "maxResponseBytes": ceiling.http.max_response_bytes + 1}}),
                "http.maxResponseBytes",
                ceiling.http.max_response_bytes,
            ),
            (
                json!({"http": {"allow": ["https://example.com"], "maxRedirects": ceiling.http.max_redirects + 1}}),
                "http.maxRedirects",
                u64::from(ceiling.http.max_redirects),
            ),
            (
                json!({"http": {"allow": ["https://example.com"], "timeoutMs": ceiling.http.timeout.as_millis() as u64 + 1}}),
                "http.timeoutMs",
                ceiling.http.timeout.as_millis() as u64,
            ),
        ] {
            let err = capabilities_from(asked.clone()).unwrap_err();
            assert_eq!(err.code, codes::LIMIT_EXCEEDED, "{asked}: {err}");
            assert_eq!(
                err.data,
                Some(json!({"limit": field, "max": max})),
                "{asked}"
            );
            assert!(
                err.message.contains(&format!("`{field}`")),
                "{}",
                err.message
            );
        }
        // At the ceiling and below: accepted.
        let at = capabilities_from(json!({
            "fsLimits": {"maxReadBytes": ceiling.fs.max_read_bytes, "maxWriteBytes": 1},
            "kv": {"maxKeyBytes": ceiling.kv.max_key_bytes, "maxValueBytes": 1,
                   "maxEntries": ceiling.kv.max_entries, "maxTotalBytes": ceiling.kv.max_total_bytes},
            "http": {"allow": ["https://example.com"],
                     "maxResponseBytes": ceiling.http.max_response_bytes,
                     "timeoutMs": ceiling.http.timeout.as_millis() as u64},
        }))
        .unwrap();
        assert_eq!(at.fs_limits.max_write_bytes, 1);
        let err =
            capabilities_from(json!({"http": {"allow": ["https://example.com"], "timeoutMs": 0}}))
                .unwrap_err();
        assert_eq!(err.code, codes::INVALID_PARAMS);
        assert!(
            err.message
                .starts_with("`http.timeoutMs` 0 is out of range"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unknown_capabilities_are_refused() {
        // By the params' type, when the request is read (handlers.rs turns
        // this into `InvalidParams` naming the path).
        let err = serde_json::from_value::<Capabilities>(json!({"network": true})).unwrap_err();
        assert!(err.to_string().contains("network"), "{err}");
        let ceiling = CapabilityLimits::default();
        let open = Policy::open();
        assert!(
            capabilities(&Capabilities::none(), Language::Python, &ceiling, &open).unwrap()
                == Capabilities::none()
        );
        let Value::Object(map) =
            json!({"mounts": [{"guest": "/data", "host": "relative/dir", "mode": "ro"}]})
        else {
            unreachable!()
        };
        let err = capabilities(&typed(map), Language::Python, &ceiling, &open).unwrap_err();
        assert!(err.message.contains("must be absolute"), "{}", err.message);
        assert_eq!(
            err.data,
            Some(json!({"capability": "mounts", "option": "mounts[0].host"}))
        );
    }

    #[test]
    fn invalid_capabilities_name_their_option() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().to_str().unwrap();
        let ceiling = CapabilityLimits::default();
        let open = Policy::open();
        // (capabilities, language, data)
        let rows = [
            (
                json!({"mounts": [{"guest": "/a", "host": dir, "mode": "ro"},
                                  {"guest": "/a/", "host": dir, "mode": "ro"}]}),
                Language::Python,
                json!({"capability": "mounts", "option": "mounts[1].guest"}),
            ),
            (
                json!({"http": {"allow": ["api.example.com", "ftp://x.example"]}}),
                Language::Python,
                json!({"capability": "http", "option": "http.allow[1]", "entry": "ftp://x.example"}),
            ),
            (
                json!({"packages": {"dir": dir, "indexUrl": "file:///etc"}}),
                Language::Python,
                json!({"capability": "packages", "option": "packages.indexUrl"}),
            ),
            (
                json!({"packages": {"dir": dir}}),
                Language::JavaScript,
                json!({"capability": "packages", "option": "packages"}),
            ),
        ];
        for (value, language, data) in rows {
            let Value::Object(map) = value.clone() else {
                unreachable!()
            };
            let err = capabilities(&typed(map), language, &ceiling, &open).unwrap_err();
            assert_eq!(err.code, codes::INVALID_PARAMS, "{value}");
            assert!(err.message.starts_with("capabilities: "), "{}", err.message);
            assert_eq!(err.data, Some(data), "{value}");
        }
    }

    /// The capabilities a client sent, as the params' type reads them.
    fn typed(map: serde_json::Map<String, Value>) -> Capabilities {
        serde_json::from_value(Value::Object(map)).expect("capabilities")
    }

    fn ended(status: Status) -> RunResult {
        let outcome = Outcome {
            status,
            stdout: Vec::new(),
            stderr: Vec::new(),
            duration: Duration::from_millis(1),
            clipped: false,
        };
        run_result(&outcome, String::new(), String::new(), None)
    }

    #[test]
    fn a_result_names_the_limit_passed_and_the_trap_apart_from_its_message() {
        let output = ended(Status::OutputLimit {
            stream: goru_runtimes::Stream::Stderr,
            limit: 64,
        });
        let limit = output.limit.unwrap();
        assert_eq!(limit.name, wire::LimitName::MaxOutputBytes);
        assert_eq!(limit.value, 64);
        assert_eq!(limit.stream, Some(wire::OutputStream::Stderr));
        let timeout = ended(Status::Timeout {
            limit: Duration::from_millis(250),
        });
        assert_eq!(
            serde_json::to_value(timeout.limit).unwrap(),
            json!({"name": "timeoutMs", "value": 250})
        );
        assert_eq!(
            ended(Status::MemoryLimit { limit: 1 << 20 })
                .limit
                .unwrap()
                .name,
            wire::LimitName::MemoryBytes
        );
        let crashed = ended(Status::Crashed {
            message: "wasm trap: call stack exhausted".into(),
        });
        assert_eq!(
            crashed.trap.as_deref(),
            Some("wasm trap: call stack exhausted")
        );
        assert_eq!(
            crashed.message.as_deref(),
            Some("the guest crashed: wasm trap: call stack exhausted")
        );
        assert_eq!(crashed.limit, None);
        let ok = ended(Status::Ok { value: None });
        assert_eq!((ok.limit, ok.trap), (None, None));
    }
}
