//! The `kv` module's limits.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The limits of a session's store. Defaults: keys up to 256 bytes, values
/// up to 1 MiB of JSON, 10,000 entries, 16 MiB in all (keys plus values).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct KvLimits {
    pub max_key_bytes: u64,
    pub max_value_bytes: u64,
    pub max_entries: u64,
    pub max_total_bytes: u64,
}

impl Default for KvLimits {
    fn default() -> Self {
        KvLimits {
            max_key_bytes: 256,
            max_value_bytes: 1 << 20,
            max_entries: 10_000,
            max_total_bytes: 16 << 20,
        }
    }
}
