//! Named functions the embedder provides to guest code: `call(name, **kw)` in
//! Python, `call(name, {...})` in JavaScript.
//!
//! Arguments arrive as one JSON value (an object of the keyword arguments);
//! the result is any JSON value, or an error message that is raised in the
//! guest. A registry lives on the engine (visible to every session) and on
//! each session (added to, and overriding, the engine's).

use futures::FutureExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

/// What a host function returns: a JSON value, or a message the guest sees
/// as an exception.
pub type HostResult = Result<Value, String>;

/// The future an async host function returns.
pub type HostFuture = Pin<Box<dyn Future<Output = HostResult> + Send>>;

type Function = Arc<dyn Fn(Value) -> HostFuture + Send + Sync>;

/// The longest name a host function may have.
pub const MAX_NAME_LEN: usize = 128;

/// A name that cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid host function name `{0}`: use 1 to 128 letters, digits, `_`, `.` or `-`, starting with a letter or `_`"
)]
pub struct InvalidName(pub String);

/// A set of named host functions.
#[derive(Clone, Default)]
pub struct HostFunctions {
    functions: BTreeMap<String, Function>,
}

impl std::fmt::Debug for HostFunctions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.functions.keys()).finish()
    }
}

impl HostFunctions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a function that answers at once. A panic inside it becomes
    /// an error in the guest; the host goes on.
    pub fn register<F>(&mut self, name: &str, function: F) -> Result<&mut Self, InvalidName>
    where
        F: Fn(Value) -> HostResult + Send + Sync + 'static,
    {
        let function = Arc::new(function);
        self.insert(name, move |args| {
            let function = function.clone();
            Box::pin(async move { function(args) })
        })
    }

    /// Registers a function that waits (on the network, a database, another
    /// process). Calls gathered in the guest run concurrently.
    pub fn register_async<F, Fut>(
        &mut self,
        name: &str,
        function: F,
    ) -> Result<&mut Self, InvalidName>
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HostResult> + Send + 'static,
    {
        self.insert(name, move |args| Box::pin(function(args)))
    }

    fn insert(
        &mut self,
        name: &str,
        function: impl Fn(Value) -> HostFuture + Send + Sync + 'static,
    ) -> Result<&mut Self, InvalidName> {
        if !valid_name(name) {
            return Err(InvalidName(name.to_string()));
        }
        self.functions.insert(name.to_string(), Arc::new(function));
        Ok(self)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// `self` with `other`'s functions added, `other` winning on a clash.
    pub(crate) fn merged_with(&self, other: &HostFunctions) -> HostFunctions {
        let mut merged = self.clone();
        for (name, function) in &other.functions {
            merged.functions.insert(name.clone(), function.clone());
        }
        merged
    }

    /// Calls `name`; `None` when no such function is registered.
    pub(crate) fn call(&self, name: &str, args: Value) -> Option<HostFuture> {
        let function = self.functions.get(name)?.clone();
        let name = name.to_string();
        Some(Box::pin(async move {
            // A panicking host function must not take the host down with it.
            match AssertUnwindSafe(async move { function(args).await })
                .catch_unwind()
                .await
            {
                Ok(result) => result,
                Err(_) => Err(format!("host function `{name}` failed (it panicked)")),
            }
        }))
    }
}

/// Letters, digits, `_`, `.`, `-`; starting with a letter or `_`. Names with
/// `:` are reserved for goru's own modules (`goru:kv.get`), so no embedder
/// function can stand in for one.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= MAX_NAME_LEN
        && (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_checked() {
        let mut functions = HostFunctions::new();
        for good in ["add", "_x", "db.query", "get-user", "a1"] {
            assert!(
                functions.register(good, |_| Ok(Value::Null)).is_ok(),
                "{good}"
            );
        }
        for bad in ["", "1x", "goru:kv.get", "a b", "ü", &"x".repeat(129)] {
            assert!(
                functions.register(bad, |_| Ok(Value::Null)).is_err(),
                "{bad}"
            );
        }
        assert!(
            functions
                .register(&"x".repeat(128), |_| Ok(Value::Null))
                .is_ok()
        );
    }

    #[tokio::test]
    async fn calls_sync_and_async_functions_and_survives_panics() {
        let mut functions = HostFunctions::new();
        functions
            .register("add", |args| {
                Ok(json!(
                    args["a"].as_i64().unwrap_or(0) + args["b"].as_i64().unwrap_or(0)
                ))
            })
            .unwrap()
            .register_async("later", |args| async move { Ok(json!({ "got": args })) })
            .unwrap()
            .register("boom", |_| panic!("host bug"))
            .unwrap();
        assert_eq!(
            functions
                .call("add", json!({"a": 2, "b": 3}))
                .unwrap()
                .await,
            Ok(json!(5))
        );
        assert_eq!(
            functions.call("later", json!([1])).unwrap().await,
            Ok(json!({"got": [1]}))
        );
        let err = functions
            .call("boom", Value::Null)
            .unwrap()
            .await
            .unwrap_err();
        assert!(err.contains("`boom` failed"), "{err}");
        assert!(functions.call("missing", Value::Null).is_none());
    }

    #[test]
    fn session_functions_override_engine_functions() {
        let mut engine = HostFunctions::new();
        engine.register("a", |_| Ok(json!("engine"))).unwrap();
        engine.register("b", |_| Ok(json!("engine"))).unwrap();
        let mut session = HostFunctions::new();
        session.register("b", |_| Ok(json!("session"))).unwrap();
        let merged = engine.merged_with(&session);
        assert_eq!(merged.names().collect::<Vec<_>>(), ["a", "b"]);
        let result = futures::executor::block_on(merged.call("b", Value::Null).unwrap());
        assert_eq!(result, Ok(json!("session")));
    }
}
