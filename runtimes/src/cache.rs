//! The on-disk cache of compiled guests.
//!
//! Compiling the Python guest takes seconds; loading its serialized form is a
//! memory map. Entries are keyed by the guest's sha256, the wasmtime version
//! and a hash of the engine configuration (epoch checks, stack size and the
//! like are baked into compiled code), so a stale entry is never picked up.

use crate::{Error, Language};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;

/// Environment variable naming the cache folder.
pub const CACHE_DIR_ENV: &str = "GORU_CACHE_DIR";

/// The default cache folder: `$GORU_CACHE_DIR`, else `$XDG_CACHE_HOME/goru`,
/// else `~/.cache/goru`; `None` when none of those can be found.
pub fn default_cache_dir() -> Option<PathBuf> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from_env(CACHE_DIR_ENV)
        .or_else(|| from_env("XDG_CACHE_HOME").map(|dir| dir.join("goru")))
        .or_else(|| from_env("HOME").map(|home| home.join(".cache/goru")))
}

/// The file name under the cache folder for a guest compiled by `engine`.
pub(crate) fn entry_name(
    engine: &wasmtime::Engine,
    language: Language,
    guest_sha256: &str,
) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!(
        "{}-{}-{:016x}.cwasm",
        language.name(),
        &guest_sha256[..16],
        hasher.finish()
    )
}

/// Loads a compiled guest from `dir`, or compiles `wasm` and stores it there.
/// A cache entry that cannot be read is replaced; a cache folder that cannot
/// be written only costs the next run a recompile.
pub(crate) fn load_or_compile(
    engine: &wasmtime::Engine,
    dir: Option<&Path>,
    language: Language,
    guest_sha256: &str,
    wasm: &[u8],
    progress: &dyn Fn(&str),
) -> Result<Component, Error> {
    let Some(dir) = dir else {
        return compile(engine, language, wasm, progress);
    };
    let path = dir.join(entry_name(engine, language, guest_sha256));
    if path.exists() {
        // SAFETY: `deserialize_file` runs the native code in the file. The
        // file is one this function wrote with `Component::serialize` into the
        // user's own cache folder (created owner-only); wasmtime checks its
        // header against this engine's version and configuration.
        #[allow(unsafe_code)]
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(_) => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let component = compile(engine, language, wasm, progress)?;
    if let Err(err) = store(dir, &path, &component) {
        progress(&format!(
            "warning: could not cache the compiled {language} guest: {err}"
        ));
    }
    Ok(component)
}

fn compile(
    engine: &wasmtime::Engine,
    language: Language,
    wasm: &[u8],
    progress: &dyn Fn(&str),
) -> Result<Component, Error> {
    progress(&format!(
        "compiling the {language} guest (first run only, cached afterwards)..."
    ));
    Component::new(engine, wasm).map_err(|err| Error::GuestLoad {
        language,
        message: err.to_string(),
    })
}

fn store(dir: &Path, path: &Path, component: &Component) -> Result<(), Error> {
    let cache_err = |message: String| Error::Cache {
        path: dir.to_path_buf(),
        message,
    };
    create_private_dir(dir).map_err(|e| cache_err(e.to_string()))?;
    let bytes = component
        .serialize()
        .map_err(|e| cache_err(e.to_string()))?;
    // Write beside the final name and rename, so a concurrent reader never
    // maps a half-written file.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| cache_err(e.to_string()))?;
    std::io::Write::write_all(&mut file, &bytes).map_err(|e| cache_err(e.to_string()))?;
    file.persist(path).map_err(|e| cache_err(e.to_string()))?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
