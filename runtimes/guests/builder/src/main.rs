//! Builds goru's two guests, `python.wasm` and `js.wasm`, from pinned,
//! hash-checked inputs, into an output folder (default `target/guests`).
//!
//! Each guest is rebuilt only when one of its inputs changed: the fingerprint
//! of its inputs (pins, WIT, glue, prelude, this builder's source) is kept in
//! `<out>/<guest>.inputs` beside the `.wasm`.
//!
//! Usage: `goru-guest-builder [--out DIR] [python|js]...`

mod ctx;
mod js;
mod pinned;
mod python;

use anyhow::{Context, Result, bail};
use ctx::Ctx;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One guest: its name, the files and folders whose contents decide its
/// bytes, and how to build it.
struct Guest {
    name: &'static str,
    inputs: &'static [&'static str],
    build: fn(&Ctx, &Path) -> Result<()>,
}

const GUESTS: &[Guest] = &[
    Guest {
        name: "python",
        inputs: &[
            "wit",
            "python",
            "../src/modules",
            "builder/src/python.rs",
            "builder/src/pinned.rs",
        ],
        build: python::build,
    },
    Guest {
        name: "js",
        inputs: &[
            "wit",
            "js",
            "../src/modules",
            "builder/src/js.rs",
            "builder/src/pinned.rs",
        ],
        build: js::build,
    },
];

fn main() -> Result<()> {
    let mut out_dir = None;
    let mut wanted = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out_dir = Some(PathBuf::from(args.next().context("--out needs a folder")?)),
            "-h" | "--help" => {
                println!("usage: goru-guest-builder [--out DIR] [python|js]...");
                return Ok(());
            }
            name if GUESTS.iter().any(|g| g.name == name) => wanted.push(arg),
            other => bail!("unknown argument `{other}`"),
        }
    }
    let guests_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("builder has no parent folder")?
        .to_path_buf();
    let repo_root = guests_dir.join("../..").canonicalize()?;
    let out_dir = out_dir.unwrap_or_else(|| repo_root.join("target/guests"));
    let ctx = Ctx {
        work_dir: repo_root.join("target/guest-build"),
        out_dir,
        guests_dir,
    };
    std::fs::create_dir_all(&ctx.work_dir)?;
    std::fs::create_dir_all(&ctx.out_dir)?;

    for guest in GUESTS {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == guest.name) {
            continue;
        }
        let output = ctx.out_dir.join(format!("{}.wasm", guest.name));
        let stamp = ctx.out_dir.join(format!("{}.inputs", guest.name));
        let fingerprint = fingerprint(&ctx.guests_dir, guest.inputs)?;
        if output.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&fingerprint)
        {
            continue;
        }
        eprintln!(
            "goru-guest-builder: building the {} guest (first time only)",
            guest.name
        );
        let started = std::time::Instant::now();
        let _ = std::fs::remove_file(&stamp);
        (guest.build)(&ctx, &output)
            .with_context(|| format!("building the {} guest", guest.name))?;
        std::fs::write(&stamp, &fingerprint)?;
        eprintln!(
            "goru-guest-builder: built {} ({:.1} MB) in {:.1}s",
            output.display(),
            std::fs::metadata(&output)?.len() as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// A sha256 over the relative paths and contents of every file under `inputs`.
fn fingerprint(base: &Path, inputs: &[&str]) -> Result<String> {
    let mut files = Vec::new();
    for input in inputs {
        collect_files(&base.join(input), &mut files)?;
    }
    // The modules' host code (`kv/mod.rs`) is not in a guest: only their
    // wrappers are, so editing host code never rebuilds the guests.
    let modules = base.join("../src/modules");
    files.retain(|file| {
        !(file.starts_with(&modules) && file.extension().is_some_and(|ext| ext == "rs"))
    });
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        let relative = file.strip_prefix(base).unwrap_or(&file);
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?);
        hasher.update([0]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let name = entry.file_name();
            if name == "__pycache__" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            collect_files(&entry.path(), files)?;
        }
    } else {
        files.push(path.to_path_buf());
    }
    Ok(())
}
