//! The JavaScript guest: QuickJS-NG built with clang + wasi-libc and our C
//! glue in `guests/js`, made a component with wit-component.

use crate::Ctx;
use anyhow::Result;
use std::path::Path;

pub fn build(_ctx: &Ctx, _output: &Path) -> Result<()> {
    anyhow::bail!("the JavaScript guest build is not written yet")
}
