//! Classification: a signature in, a [`CallPlan`] out. Pure functions, one
//! module per ABI; no code and no memory is touched here.

pub mod sysv64;

use crate::abi::Abi;
use crate::error::{Error, Result};
use crate::plan::CallPlan;
use crate::types::Type;

/// Classifies a signature for `abi`. `fixed_args` is `Some(n)` for a
/// variadic signature whose first `n` arguments are fixed.
pub fn classify(
    abi: Abi,
    ret: &Type,
    args: &[Type],
    fixed_args: Option<usize>,
) -> Result<CallPlan> {
    match abi {
        Abi::SysV64 => sysv64::classify(ret, args, fixed_args),
        _ => Err(Error::UnsupportedAbi {
            abi,
            reason: "not implemented in this build yet",
        }),
    }
}
