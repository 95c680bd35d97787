//! x86-64 emitter.

use super::EntryForm;
use crate::error::{Error, Result};
use crate::plan::CallPlan;

/// Assembles an x86-64 call stub.
pub fn compile_call(_plan: &CallPlan, _form: EntryForm) -> Result<Vec<u8>> {
    Err(Error::Assembly {
        reason: "emitter under construction".into(),
    })
}
