//! The Python guest: CPython 3.14 as a pre-initialized component, built by
//! componentize-py from our WIT world and the prelude in `guests/python`.

use crate::Ctx;
use anyhow::Result;
use std::path::Path;

pub fn build(_ctx: &Ctx, _output: &Path) -> Result<()> {
    anyhow::bail!("the Python guest build is not written yet")
}
