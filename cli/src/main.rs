//! `goru`: run untrusted Python and JavaScript in a WebAssembly sandbox.

//!
//! `main` parses the arguments and hands them to a command: `settings`
//! turns them into limits, capabilities and the program; `local` and
//! `connect` run it here or in a daemon, `repl` and `deps` are the other
//! commands; `outcome`, `report` and `verdict` tell the user how it went.

mod cli;
mod connect;
mod deps;
mod fatal;
mod local;
mod outcome;
mod output;
mod repl;
mod report;
mod runtime;
mod settings;
mod verdict;

use clap::{CommandFactory, FromArgMatches};
use cli::{Cli, Command, RunArgs};
use fatal::Fatal;
use goru_runtimes::exit_code;
use settings::RunSettings;

fn main() {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            let code = if err.use_stderr() {
                exit_code::USAGE
            } else {
                0
            };
            let _ = err.print();
            std::process::exit(code);
        }
    };
    let result = match cli.command {
        Some(Command::Run(args)) => {
            let given = connect::GivenLimits::of(matches.subcommand_matches("run"));
            run(args, given)
        }
        Some(Command::Repl(args)) => repl::main(args),
        Some(Command::Deps(args)) => deps::main(args),
        None => run(cli.run, connect::GivenLimits::of(Some(&matches))),
    };
    let code = match result {
        Ok(code) => code,
        Err(fatal) => {
            report::error(&fatal.message, fatal.hint.as_deref());
            fatal.code
        }
    };
    // Exit without tearing down the runtime: a blocked read of the host's
    // stdin must not keep the process alive.
    std::process::exit(code);
}

/// `goru` / `goru run`: here, or in the daemon `--connect` names.
fn run(args: RunArgs, given: connect::GivenLimits) -> Result<i32, Fatal> {
    if let Some(socket) = args.connect.clone() {
        return connect::run(&socket, RunSettings::resolve(args)?, given);
    }
    local::run(RunSettings::resolve(args)?)
}
