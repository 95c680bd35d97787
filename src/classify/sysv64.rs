//! The System V AMD64 psABI.

use crate::abi::Abi;
use crate::error::{Error, Result};
use crate::plan::CallPlan;
use crate::types::Type;

/// Classifies a signature under the SysV AMD64 psABI.
pub fn classify(_ret: &Type, _args: &[Type], _fixed_args: Option<usize>) -> Result<CallPlan> {
    Err(Error::UnsupportedAbi {
        abi: Abi::SysV64,
        reason: "classifier under construction",
    })
}
