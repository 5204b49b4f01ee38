//! `kv`: a key-value store private to one session.
//!
//! Keys are strings, values any JSON value. Every limit is checked under the
//! store's lock, so concurrent sets from one gathered batch cannot together
//! pass the entry or byte limits.

use super::{Module, ModuleError, Setup, SetupResult, string_arg};
use crate::{Capabilities, KvLimits};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The module's state, when the capabilities give it.
pub(crate) fn setup(capabilities: &Capabilities, _: &Setup) -> SetupResult {
    Ok(capabilities
        .kv
        .clone()
        .map(|limits| Box::new(KvStore::new(limits)) as Box<dyn Module>))
}

#[async_trait::async_trait]
impl Module for KvStore {
    async fn call(&self, function: &str, args: Value) -> Result<Value, ModuleError> {
        KvStore::call(self, function, args)
    }
}

#[derive(Clone)]
pub(crate) struct KvStore {
    limits: KvLimits,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Values kept as their JSON text: what is counted is what is stored.
    entries: BTreeMap<String, String>,
    total_bytes: u64,
}

fn limit_error(message: String) -> ModuleError {
    ModuleError::new("ValueError", message)
}

impl KvStore {
    pub(crate) fn new(limits: KvLimits) -> Self {
        KvStore {
            limits,
            state: Arc::default(),
        }
    }

    pub(crate) fn call(&self, function: &str, args: Value) -> Result<Value, ModuleError> {
        match function {
            "get" => self.get(string_arg(&args, "key")?),
            "set" => self.set(
                string_arg(&args, "key")?,
                args.get("value").unwrap_or(&Value::Null),
            ),
            "delete" => self.delete(string_arg(&args, "key")?),
            "keys" => self.keys(args.get("prefix").and_then(Value::as_str).unwrap_or("")),
            _ => Err(ModuleError::new(
                "AttributeError",
                format!("kv has no function `{function}`"),
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &str) -> Result<Value, ModuleError> {
        let state = self.lock();
        Ok(match state.entries.get(key) {
            Some(text) => {
                json!({ "found": true, "value": serde_json::from_str::<Value>(text).unwrap_or(Value::Null) })
            }
            None => json!({ "found": false }),
        })
    }

    fn set(&self, key: &str, value: &Value) -> Result<Value, ModuleError> {
        let limits = &self.limits;
        if key.len() as u64 > limits.max_key_bytes {
            return Err(limit_error(format!(
                "kv key of {} bytes is longer than the limit of {}",
                key.len(),
                limits.max_key_bytes
            )));
        }
        let text = serde_json::to_string(value).map_err(|e| limit_error(e.to_string()))?;
        if text.len() as u64 > limits.max_value_bytes {
            return Err(limit_error(format!(
                "kv value of {} bytes (as JSON) is larger than the limit of {}",
                text.len(),
                limits.max_value_bytes
            )));
        }
        let mut state = self.lock();
        let new_size = (key.len() + text.len()) as u64;
        let old_size = state
            .entries
            .get(key)
            .map(|old| (key.len() + old.len()) as u64);
        if old_size.is_none() && state.entries.len() as u64 >= limits.max_entries {
            return Err(limit_error(format!(
                "kv is full: it holds the limit of {} entries",
                limits.max_entries
            )));
        }
        let total = state.total_bytes - old_size.unwrap_or(0) + new_size;
        if total > limits.max_total_bytes {
            return Err(limit_error(format!(
                "kv is full: this value would bring it to {total} bytes, over the limit of {}",
                limits.max_total_bytes
            )));
        }
        state.total_bytes = total;
        state.entries.insert(key.to_string(), text);
        Ok(Value::Null)
    }

    fn delete(&self, key: &str) -> Result<Value, ModuleError> {
        let mut state = self.lock();
        let removed = state.entries.remove(key);
        if let Some(text) = &removed {
            state.total_bytes -= (key.len() + text.len()) as u64;
        }
        Ok(Value::Bool(removed.is_some()))
    }

    fn keys(&self, prefix: &str) -> Result<Value, ModuleError> {
        let state = self.lock();
        Ok(Value::Array(
            state
                .entries
                .keys()
                .filter(|key| key.starts_with(prefix))
                .map(|key| Value::String(key.clone()))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(limits: KvLimits) -> KvStore {
        KvStore::new(limits)
    }

    fn call(store: &KvStore, function: &str, args: Value) -> Result<Value, ModuleError> {
        store.call(function, args)
    }

    #[test]
    fn get_set_delete_keys() {
        let kv = store(KvLimits::default());
        assert_eq!(
            call(&kv, "get", json!({"key": "a"})),
            Ok(json!({"found": false}))
        );
        call(&kv, "set", json!({"key": "a", "value": {"n": [1, 2]}})).unwrap();
        call(&kv, "set", json!({"key": "b", "value": null})).unwrap();
        assert_eq!(
            call(&kv, "get", json!({"key": "a"})),
            Ok(json!({"found": true, "value": {"n": [1, 2]}}))
        );
        assert_eq!(
            call(&kv, "get", json!({"key": "b"})),
            Ok(json!({"found": true, "value": null}))
        );
        assert_eq!(call(&kv, "keys", json!({})), Ok(json!(["a", "b"])));
        assert_eq!(call(&kv, "keys", json!({"prefix": "b"})), Ok(json!(["b"])));
        assert_eq!(call(&kv, "delete", json!({"key": "a"})), Ok(json!(true)));
        assert_eq!(call(&kv, "delete", json!({"key": "a"})), Ok(json!(false)));
        assert!(call(&kv, "get", json!({"key": 1})).unwrap_err().kind == "TypeError");
    }

    #[test]
    fn limits_hold_at_their_edges() {
        let kv = store(KvLimits {
            max_key_bytes: 3,
            max_value_bytes: 5,
            max_entries: 2,
            max_total_bytes: 12,
        });
        assert!(
            call(&kv, "set", json!({"key": "abc", "value": "xyz"})).is_ok(),
            "3 + 5 bytes"
        );
        assert!(
            call(&kv, "set", json!({"key": "abcd", "value": 1})).is_err(),
            "key too long"
        );
        assert!(
            call(&kv, "set", json!({"key": "b", "value": "wxyz"})).is_err(),
            "value 6 bytes"
        );
        assert!(
            call(&kv, "set", json!({"key": "b", "value": 123})).is_ok(),
            "total 12"
        );
        let full = call(&kv, "set", json!({"key": "c", "value": 1})).unwrap_err();
        assert!(full.message.contains("2 entries"), "{full:?}");
        assert!(
            call(&kv, "set", json!({"key": "b", "value": 1234})).is_err(),
            "total 13"
        );
        assert!(
            call(&kv, "set", json!({"key": "b", "value": 12})).is_ok(),
            "replacing frees its bytes"
        );
        call(&kv, "delete", json!({"key": "abc"})).unwrap();
        assert!(
            call(&kv, "set", json!({"key": "c", "value": 1})).is_ok(),
            "delete frees an entry"
        );
    }

    #[test]
    fn concurrent_sets_never_pass_the_limits() {
        let kv = store(KvLimits {
            max_entries: 100,
            ..KvLimits::default()
        });
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .filter(|i| {
                            kv.call("set", json!({"key": format!("{t}-{i}"), "value": i}))
                                .is_ok()
                        })
                        .count()
                })
            })
            .collect();
        let stored: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(stored, 100);
        assert_eq!(
            kv.call("keys", json!({}))
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            100
        );
    }
}
