//! What every guest build is given: where its inputs are and where its
//! output goes.

use std::path::PathBuf;

/// Paths every guest build shares.
pub struct Ctx {
    /// `runtimes/guests`: the WIT world, the prelude and the glue.
    pub guests_dir: PathBuf,
    /// Scratch space for downloads and intermediate files.
    pub work_dir: PathBuf,
    /// Where finished `.wasm` files go.
    pub out_dir: PathBuf,
}

impl Ctx {
    pub fn wit_dir(&self) -> PathBuf {
        self.guests_dir.join("wit")
    }

    /// `runtimes/src/modules`: each built-in module's host code and guest wrappers.
    pub fn modules_dir(&self) -> PathBuf {
        self.guests_dir.join("../src/modules")
    }
}
