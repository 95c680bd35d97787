//! One error type for every subcommand: what went wrong, ready to print.

use std::fmt;

use crate::sig::{LowerError, ParseError};

/// Why a subcommand failed. `main` prints it and exits with status 2.
#[derive(Debug)]
pub enum CliError {
    /// The signature text did not parse; `source` is the text, for the caret.
    Parse {
        /// The signature as given.
        source: String,
        /// Where and why.
        error: ParseError,
    },
    /// The signature parsed but names something jitffi cannot pass.
    Lower(LowerError),
    /// jitffi refused the signature (classification, assembly, memory).
    Jitffi(jitffi::Error),
    /// A command-line value is wrong (an argument literal, a target name).
    Usage(String),
    /// A call returned something other than what its check expected.
    Check(String),
    /// A shared library or symbol could not be loaded.
    Load(String),
    /// Reading or writing a file failed.
    Io {
        /// What was being done, with the path.
        what: String,
        /// The OS error.
        error: std::io::Error,
    },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Parse { source, error } => {
                writeln!(f, "cannot parse signature (column {})", error.column)?;
                f.write_str(error.render(source).trim_end())
            }
            CliError::Lower(e) => write!(f, "unsupported signature: {e}"),
            CliError::Jitffi(e) => write!(f, "jitffi: {e}"),
            CliError::Usage(m) | CliError::Load(m) | CliError::Check(m) => f.write_str(m),
            CliError::Io { what, error } => write!(f, "{what}: {error}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<jitffi::Error> for CliError {
    fn from(e: jitffi::Error) -> CliError {
        CliError::Jitffi(e)
    }
}

impl From<LowerError> for CliError {
    fn from(e: LowerError) -> CliError {
        CliError::Lower(e)
    }
}

/// Parses `text` as a signature, keeping the text for the error caret.
pub fn parse_signature(text: &str) -> Result<crate::sig::Signature, CliError> {
    crate::sig::Signature::parse(text).map_err(|error| CliError::Parse {
        source: text.to_string(),
        error,
    })
}
