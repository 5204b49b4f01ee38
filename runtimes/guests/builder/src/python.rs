//! The Python guest: CPython 3.14 as a pre-initialized component, built by
//! componentize-py from our WIT world and the prelude in `guests/python`.
//!
//! componentize-py imports the app module `goru_guest` at build time and
//! snapshots the interpreter; everything the prelude imports (the bundled
//! stdlib, see `goru_stdlib.py`) is in that snapshot.

use crate::ctx::Ctx;
use crate::pinned;
use anyhow::{Context, Result};
use std::path::Path;
use std::process::Command;

/// The prelude's app module (`guests/python/goru_guest.py`).
const APP_MODULE: &str = "goru_guest";
/// The world of `guests/wit/goru.wit` the guest implements.
const WORLD: &str = "guest";

pub fn build(ctx: &Ctx, output: &Path) -> Result<()> {
    let componentize_py = pinned::componentize_py(&ctx.work_dir)?;
    let modules = stage_modules(ctx)?;
    // Beside the output, so that the final rename is atomic.
    let partial = output.with_extension("wasm.partial");
    let _ = std::fs::remove_file(&partial);
    pinned::run(
        Command::new(&componentize_py)
            // An empty environment: with `VIRTUAL_ENV` or a `python3` on
            // `PATH`, componentize-py would add the build machine's
            // site-packages to the guest's import path, and the snapshot
            // would start from whatever variables the build ran with.
            .env_clear()
            .current_dir(&ctx.work_dir)
            .arg("--quiet")
            .arg("--wit-path")
            .arg(ctx.wit_dir())
            .args(["--world", WORLD, "componentize", APP_MODULE])
            .arg("--python-path")
            .arg(ctx.guests_dir.join("python"))
            .arg("--python-path")
            .arg(&modules)
            .arg("--output")
            .arg(&partial),
    )?;
    std::fs::rename(&partial, output)
        .with_context(|| format!("moving {} to {}", partial.display(), output.display()))
}

/// Copies each built-in module's Python side (`runtimes/src/modules/NAME/NAME.py`)
/// into a staging folder as `goru_mod_NAME.py`, the name the prelude imports.
fn stage_modules(ctx: &Ctx) -> Result<std::path::PathBuf> {
    let staging = ctx.work_dir.join("python-modules");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    let modules_dir = ctx.modules_dir();
    for entry in std::fs::read_dir(&modules_dir)
        .with_context(|| format!("reading {}", modules_dir.display()))?
    {
        let dir = entry?.path();
        let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let source = dir.join(format!("{name}.py"));
        if source.exists() {
            std::fs::copy(&source, staging.join(format!("goru_mod_{name}.py")))
                .with_context(|| format!("staging {}", source.display()))?;
        }
    }
    Ok(staging)
}
