//! The host side of the `host` interface: checks every call against the
//! run's limits, then dispatches it to a host function.
//!
//! Everything here treats the guest as hostile: names, argument sizes and
//! counts are checked before any work is done for a call, and a batch runs
//! with bounded concurrency.

use crate::Limits;
use crate::host_functions::HostFunctions;
use crate::host_memory::{Held, HostMemory, OverBudget};
use crate::modules::{self, Modules};
use futures::StreamExt;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The longest name a guest may call: room for every registered name
/// ([`crate::MAX_NAME_LEN`]) and the built-in modules' prefixed ones.
const MAX_CALL_NAME_BYTES: usize = 256;

/// The call behind the guest's `os._exit(n)` (Python): the host ends the
/// run there with exit code `n`, as a process ends. WASI's own exit can only
/// say success or failure, and reaches the host as a trap.
pub(crate) const EXIT_CALL: &str = "goru:exit";

/// The exit code of an `EXIT_CALL`, whose argument is the code as JSON;
/// `None` for any other call (a malformed one is dispatched, and refused,
/// like any unknown module function).
pub(crate) fn exit_request(name: &str, args_json: &str) -> Option<i32> {
    if name != EXIT_CALL {
        return None;
    }
    serde_json::from_str(args_json).ok()
}

/// What one session's guest may call, and the per-run counters.
#[derive(Clone)]
pub(crate) struct HostCalls {
    inner: Arc<Inner>,
}

struct Inner {
    functions: HostFunctions,
    modules: Modules,
    limits: Limits,
    calls_this_run: AtomicU64,
    /// What calls in flight and results not yet delivered hold on the host.
    memory: HostMemory,
}

impl HostCalls {
    pub(crate) fn new(functions: HostFunctions, modules: Modules, limits: Limits) -> Self {
        HostCalls {
            inner: Arc::new(Inner {
                functions,
                modules,
                memory: HostMemory::new(limits.memory_bytes),
                limits,
                calls_this_run: AtomicU64::new(0),
            }),
        }
    }

    /// The session's budget of open files.
    pub(crate) fn open_files(&self) -> Arc<crate::modules::fs::OpenFiles> {
        self.inner.modules.open_files()
    }

    /// Starts a new run's count of calls.
    pub(crate) fn begin_run(&self) {
        self.inner.calls_this_run.store(0, Ordering::SeqCst);
    }

    /// One call from the guest.
    pub(crate) async fn call(&self, name: String, args_json: String) -> Result<String, String> {
        self.count(1)?;
        // What the result holds is given back on return: wasmtime copies it
        // into the guest's memory and drops it right after.
        let (result, _held) = self.dispatch(name, args_json).await;
        result
    }

    /// A batch from the guest: all calls counted up front, then run with at
    /// most `max_concurrent_host_calls` at a time; results in order.
    pub(crate) async fn call_batch(
        &self,
        calls: Vec<(String, String)>,
    ) -> Vec<Result<String, String>> {
        let limits = &self.inner.limits;
        let refuse_all = |message: String| calls.iter().map(|_| Err(message.clone())).collect();
        if calls.len() as u64 > limits.max_batch_calls {
            return refuse_all(format!(
                "a batch of {} host calls is more than the limit of {} per batch",
                calls.len(),
                limits.max_batch_calls
            ));
        }
        if let Err(message) = self.count(calls.len() as u64) {
            return refuse_all(message);
        }
        let concurrency = usize::try_from(limits.max_concurrent_host_calls).unwrap_or(usize::MAX);
        let budget = limits.max_batch_result_bytes;
        let mut held = 0u64;
        let results: Vec<(Result<String, String>, Option<Held>)> = futures::stream::iter(calls)
            .map(|(name, args)| self.dispatch(name, args))
            .buffered(concurrency)
            .map(|(result, memory)| {
                // Drop results past the budget at once rather than holding
                // them until the whole batch is done.
                let size = match &result {
                    Ok(json) | Err(json) => json.len() as u64,
                };
                if held.saturating_add(size) > budget {
                    return (
                        Err(format!(
                            "the results of this batch passed the limit of {budget} bytes together"
                        )),
                        None,
                    );
                }
                held += size;
                (result, memory)
            })
            .collect()
            .await;
        // The host-memory budget is given back as the results go to the guest.
        results.into_iter().map(|(result, _held)| result).collect()
    }

    fn count(&self, calls: u64) -> Result<(), String> {
        let limit = self.inner.limits.max_host_calls;
        let before = self.inner.calls_this_run.fetch_add(calls, Ordering::SeqCst);
        if before.saturating_add(calls) > limit {
            return Err(format!("this run reached its limit of {limit} host calls"));
        }
        Ok(())
    }

    /// One call, checked and run; the budget its result holds on the host
    /// until it is delivered.
    async fn dispatch(
        &self,
        name: String,
        args_json: String,
    ) -> (Result<String, String>, Option<Held>) {
        let is_module = name.starts_with(modules::PREFIX);
        let refusal = |over: OverBudget| {
            let message = over.to_string();
            if is_module {
                modules::ModuleError::new("MemoryError", message).to_json()
            } else {
                message
            }
        };
        let max_payload = match self.check(&name, &args_json) {
            Ok(max_payload) => max_payload,
            Err(message) => return (Err(message), None),
        };
        // Before any work: what this call may produce counts from the start.
        let mut held = match self.inner.memory.reserve(max_payload).await {
            Ok(held) => held,
            Err(over) => return (Err(refusal(over)), None),
        };
        let result = self.run(name, args_json, max_payload).await;
        let size = match &result {
            Ok(json) | Err(json) => json.len() as u64,
        };
        match held.settle(size) {
            Ok(()) => (result, Some(held)),
            Err(over) => (Err(refusal(over)), None),
        }
    }

    /// Checks a call's name and arguments before anything is done for it;
    /// its payload limit.
    fn check(&self, name: &str, args_json: &str) -> Result<u64, String> {
        // Names are echoed in errors: refuse absurd ones before anything else.
        if name.len() > MAX_CALL_NAME_BYTES {
            return Err(format!(
                "a host function name of {} bytes is longer than the limit of {MAX_CALL_NAME_BYTES}",
                name.len()
            ));
        }
        let default_payload = self.inner.limits.max_host_payload_bytes;
        let max_payload = match name.strip_prefix(modules::PREFIX) {
            // File contents are bounded by the `fs` limits instead.
            Some(module_function) => self
                .inner
                .modules
                .max_payload_bytes(module_function, default_payload),
            None => default_payload,
        };
        if args_json.len() as u64 > max_payload {
            let message = format!(
                "the arguments of `{}` are {} bytes of JSON, more than the limit of {max_payload}",
                printable(name),
                args_json.len()
            );
            // In a module, a limit is a ValueError like the module's own.
            return Err(if name.starts_with(modules::PREFIX) {
                modules::ModuleError::new("ValueError", message).to_json()
            } else {
                message
            });
        }
        Ok(max_payload)
    }

    /// Runs a checked call: its result as JSON, at most `max_payload` bytes.
    async fn run(
        &self,
        name: String,
        args_json: String,
        max_payload: u64,
    ) -> Result<String, String> {
        let args: Value = serde_json::from_str(&args_json).map_err(|e| {
            format!(
                "the arguments of `{}` are not valid JSON: {e}",
                printable(&name)
            )
        })?;
        let result = if let Some(module_function) = name.strip_prefix(modules::PREFIX) {
            // Module errors travel as JSON naming the exception to raise.
            self.inner
                .modules
                .call(module_function, args)
                .await
                .map_err(|e| e.to_json())?
        } else {
            let Some(future) = self.inner.functions.call(&name, args) else {
                return Err(unknown_function(&name, &self.inner.functions));
            };
            future.await?
        };
        let json =
            serde_json::to_string(&result).map_err(|e| format!("host function result: {e}"))?;
        if json.len() as u64 > max_payload {
            return Err(format!(
                "the result of `{name}` is {} bytes of JSON, more than the limit of {max_payload}",
                json.len()
            ));
        }
        Ok(json)
    }
}

fn unknown_function(name: &str, functions: &HostFunctions) -> String {
    let available: Vec<&str> = functions.names().collect();
    if available.is_empty() {
        format!(
            "no host function named `{}`: this sandbox has none",
            printable(name)
        )
    } else {
        format!(
            "no host function named `{}` (available: {})",
            printable(name),
            available.join(", ")
        )
    }
}

/// A guest-chosen name, shortened and escaped for an error message.
fn printable(name: &str) -> String {
    let short: String = name.chars().take(64).collect();
    let escaped = short.escape_debug().to_string();
    if name.chars().count() > 64 {
        format!("{escaped}...")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, Instant};

    fn calls(limits: Limits) -> HostCalls {
        let mut functions = HostFunctions::new();
        functions
            .register("echo", Ok)
            .unwrap()
            .register("big", |_| Ok(json!("x".repeat(2000))))
            .unwrap()
            .register_async("slow", |_| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(json!(true))
            })
            .unwrap();
        HostCalls::new(
            functions,
            Modules::new(&crate::Capabilities::none(), &limits).unwrap(),
            limits,
        )
    }

    #[tokio::test]
    async fn checks_names_json_and_sizes() {
        let limits = Limits {
            max_host_payload_bytes: 1000,
            ..Limits::default()
        };
        let host = calls(limits);
        assert_eq!(
            host.call("echo".into(), r#"{"a":1}"#.into()).await,
            Ok(r#"{"a":1}"#.into())
        );
        let err = host.call("nope".into(), "{}".into()).await.unwrap_err();
        assert!(
            err.contains("no host function named `nope`") && err.contains("echo"),
            "{err}"
        );
        let err = host
            .call("echo".into(), "{not json".into())
            .await
            .unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = host
            .call("echo".into(), format!("\"{}\"", "y".repeat(1000)))
            .await
            .unwrap_err();
        assert!(err.contains("more than the limit of 1000"), "{err}");
        let err = host.call("x".repeat(257), "{}".into()).await.unwrap_err();
        assert!(
            err.contains("longer than the limit of 256") && err.len() < 200,
            "{err}"
        );
        let err = host.call("big".into(), "{}".into()).await.unwrap_err();
        assert!(err.contains("result of `big`"), "{err}");
    }

    #[test]
    fn an_exit_request_carries_its_code_and_nothing_else_is_one() {
        assert_eq!(exit_request(EXIT_CALL, "3"), Some(3));
        assert_eq!(exit_request(EXIT_CALL, "-2147483648"), Some(i32::MIN));
        assert_eq!(exit_request(EXIT_CALL, "2147483648"), None);
        assert_eq!(exit_request(EXIT_CALL, "\"3\""), None);
        assert_eq!(exit_request("exit", "3"), None);
    }

    #[tokio::test]
    async fn module_calls_are_refused_unless_enabled() {
        let host = calls(Limits::default());
        let err = host
            .call("goru:kv.get".into(), r#"{"key":"a"}"#.into())
            .await
            .unwrap_err();
        let err: Value = serde_json::from_str(&err).unwrap();
        assert_eq!(err["type"], "PermissionError");
        assert!(err["message"].as_str().unwrap().contains("`--kv`"), "{err}");

        let capabilities = crate::Capabilities {
            kv: Some(Default::default()),
            ..crate::Capabilities::none()
        };
        let host = HostCalls::new(
            HostFunctions::new(),
            Modules::new(&capabilities, &Limits::default()).unwrap(),
            Limits::default(),
        );
        assert_eq!(
            host.call("goru:kv.set".into(), r#"{"key":"a","value":1}"#.into())
                .await,
            Ok("null".into())
        );
        assert_eq!(
            host.call("goru:kv.get".into(), r#"{"key":"a"}"#.into())
                .await,
            Ok(r#"{"found":true,"value":1}"#.into())
        );
    }

    #[tokio::test]
    async fn counts_calls_per_run() {
        let host = calls(Limits {
            max_host_calls: 3,
            ..Limits::default()
        });
        for _ in 0..3 {
            assert!(host.call("echo".into(), "1".into()).await.is_ok());
        }
        let err = host.call("echo".into(), "1".into()).await.unwrap_err();
        assert!(err.contains("limit of 3 host calls"), "{err}");
        host.begin_run();
        assert!(host.call("echo".into(), "1".into()).await.is_ok());
    }

    #[tokio::test]
    async fn batches_run_concurrently_in_order_and_are_bounded() {
        let host = calls(Limits::default());
        let started = Instant::now();
        let results = host
            .call_batch(vec![
                ("slow".into(), "{}".into()),
                ("echo".into(), "2".into()),
                ("slow".into(), "{}".into()),
            ])
            .await;
        assert!(
            started.elapsed() < Duration::from_millis(190),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            results,
            vec![Ok("true".into()), Ok("2".into()), Ok("true".into())]
        );

        let host = calls(Limits {
            max_batch_calls: 2,
            ..Limits::default()
        });
        let results = host.call_batch(vec![("echo".into(), "1".into()); 3]).await;
        assert_eq!(results.len(), 3);
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().unwrap_err().contains("limit of 2 per batch"))
        );
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_its_result_budget() {
        let host = calls(Limits {
            max_batch_result_bytes: 5000,
            ..Limits::default()
        });
        // `big` returns 2002 bytes of JSON: two fit in 5000, the third does not.
        let results = host.call_batch(vec![("big".into(), "{}".into()); 3]).await;
        assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
        let err = results[2].as_ref().unwrap_err();
        assert!(err.contains("limit of 5000 bytes together"), "{err}");
    }

    #[tokio::test]
    async fn results_past_the_host_memory_budget_are_refused_as_memory_errors() {
        let host = calls(Limits {
            max_host_payload_bytes: 4000,
            memory_bytes: 5000,
            ..Limits::default()
        });
        // `big` returns 2002 bytes of JSON: two are held, the third does not fit.
        let results = host.call_batch(vec![("big".into(), "{}".into()); 3]).await;
        assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
        let err = results[2].as_ref().unwrap_err();
        assert!(
            err.contains("holds 4004 bytes") && err.contains("host-memory budget of 5000 bytes"),
            "{err}"
        );
        // Delivered results give their share back: the next batch has room.
        let results = host.call_batch(vec![("big".into(), "{}".into()); 2]).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");

        // In a module, the refusal names the exception to raise.
        let capabilities = crate::Capabilities {
            kv: Some(Default::default()),
            ..crate::Capabilities::none()
        };
        let limits = Limits {
            memory_bytes: 40,
            ..Limits::default()
        };
        let host = HostCalls::new(
            HostFunctions::new(),
            Modules::new(&capabilities, &limits).unwrap(),
            limits,
        );
        host.call(
            "goru:kv.set".into(),
            r#"{"key":"a","value":"0123456789012345678901234"}"#.into(),
        )
        .await
        .unwrap();
        let results = host
            .call_batch(vec![("goru:kv.get".into(), r#"{"key":"a"}"#.into()); 2])
            .await;
        let err: Value = serde_json::from_str(results[1].as_ref().unwrap_err()).unwrap();
        assert_eq!(err["type"], "MemoryError", "{err}");
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let host = calls(Limits {
            max_concurrent_host_calls: 1,
            ..Limits::default()
        });
        let started = Instant::now();
        let results = host.call_batch(vec![("slow".into(), "{}".into()); 3]).await;
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        assert!(results.iter().all(Result::is_ok));
    }
}
