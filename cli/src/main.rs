//! `jitffi`: see what jitffi buys on this machine (`bench`), where every
//! argument of a signature goes (`explain`), and call C from the shell
//! (`call`).

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jitffi_cli::call::{call, CallOptions};
use jitffi_cli::explain::{explain, parse_target, Show};
use jitffi_cli::CliError;

#[derive(Parser, Debug)]
#[command(name = "jitffi", version, about, long_about = None)]
struct Cli {
    /// Append every generated stub to `/tmp/perf-PID.map` for `perf report`
    /// (the same as JITFFI_PERF_MAP=1).
    #[arg(long, global = true)]
    perf_map: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Direct call vs jitffi vs the system libffi, on this machine: calls
    /// S1-S8, closures, cif preparation.
    Bench(jitffi_cli::bench::Options),
    /// Show the call plan of a signature (which register or stack slot
    /// every piece goes to) and the generated stub and thunk.
    Explain {
        /// The signature, C-like: `double(int, struct { float; float }, ...)`.
        signature: String,
        /// x86_64-sysv, x86_64-win64, x86_64-gnuw64 or aarch64
        /// (default: the signature's prefix, else this host).
        #[arg(long)]
        target: Option<String>,
        /// Leave out the disassembly.
        #[arg(long)]
        no_code: bool,
        /// Show the bytes of each instruction.
        #[arg(long)]
        bytes: bool,
    },
    /// Call SYMBOL in LIBRARY (a path, a soname like libm.so.6, a short
    /// name like `m`, or `-` for the process itself) and print the result.
    Call {
        /// The shared library.
        library: String,
        /// The function's name.
        symbol: String,
        /// Its signature: `double(double, double)`, `int(const char *, ...)`.
        signature: String,
        /// The arguments: numbers, strings for `char *`, `{...}` for structs.
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
        /// Also print errno after the call (options go before LIBRARY:
        /// everything after SIGNATURE is an argument of the function).
        #[arg(long)]
        errno: bool,
    },
}

fn run(cli: Cli) -> Result<(), CliError> {
    if cli.perf_map {
        jitffi::perfmap::enable();
    }
    match cli.command {
        Command::Bench(options) => jitffi_cli::bench::run(&options),
        Command::Explain {
            signature,
            target,
            no_code,
            bytes,
        } => {
            let target = target.as_deref().map(parse_target).transpose()?;
            let text = explain(&signature, target, Show { no_code, bytes })?;
            print(&text)
        }
        Command::Call {
            library,
            symbol,
            signature,
            args,
            errno,
        } => {
            let text = call(&library, &symbol, &signature, &args, CallOptions { errno })?;
            print(&text)
        }
    }
}

fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // `jitffi explain ... | head` closing the pipe is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(CliError::Io {
            what: "writing to stdout".into(),
            error,
        }),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
