//! The `jitffi` command's library: the signature language and the
//! subcommands, kept out of `main.rs` so tests can reach them.

pub mod bench;
pub mod call;
pub mod error;
pub mod explain;
pub mod sig;

pub use error::CliError;
