//! Embeds the guest components built by `goru-guest-builder` into the engine,
//! together with their sha256 (the compile cache's key).
//!
//! The guests are looked up in `$GORU_GUESTS_DIR`, by default `target/guests`
//! of this workspace. `./x build` (and every `./x` command) builds them.

use sha2::{Digest, Sha256};
use std::path::PathBuf;

const GUESTS: &[(&str, &str)] = &[("python", "PYTHON"), ("js", "JS")];

fn main() {
    println!("cargo:rerun-if-env-changed=GORU_GUESTS_DIR");
    let dir = std::env::var_os("GORU_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../target/guests")
        });
    for (name, env) in GUESTS {
        let path = dir.join(format!("{name}.wasm"));
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(&path).unwrap_or_else(|err| {
            panic!(
                "\n\nerror: the {name} guest is missing ({}: {err})\n\
                 hint: run `./x build` (it builds the guests from pinned inputs), \
                 or set GORU_GUESTS_DIR to a folder holding python.wasm and js.wasm\n\n",
                path.display()
            )
        });
        let path = path.canonicalize().unwrap();
        println!("cargo:rustc-env=GORU_{env}_WASM={}", path.display());
        println!(
            "cargo:rustc-env=GORU_{env}_SHA256={}",
            hex::encode(Sha256::digest(&bytes))
        );
    }
}
