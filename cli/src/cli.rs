//! The command line, in one place.

use clap::{Args, Parser, Subcommand};
use goru_runtimes::{Capabilities, HttpCapability, Language, Mount, MountError};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0    the code ran to completion
  N    the code called sys.exit(N) / std.exit(N)
  1    an uncaught exception (traceback on stderr)
  2    a usage error: bad flags, unreadable or unknown input, no daemon at --connect
  70   an internal error of goru
  124  the --timeout limit was hit
  134  the guest crashed (for example its native stack ran out)
  137  the --memory limit was hit and the guest could not go on
  153  the --max-output limit was hit (output truncated, run stopped)
Code can exit with any of these itself (sys.exit(124)). goru's own verdicts
come with an `error:` line on stderr; `--report FILE` gives the verdict in a
file the code cannot write: `exit` for the code's own exit, `timeout` for a
real one.

Examples:
  goru script.py arg1 arg2
  goru -l python -c 'print(1 + 1)'
  echo 'console.log(1 + 1)' | goru -l js
  goru --timeout 2s --memory 64MiB solution.py < input.txt
  goru --mount /data:./data:ro --mount /out:./out:rwc job.py
  goru --allow-host api.example.com --allow-host 127.0.0.1:8080 fetch.py
  goru --packages .goru/packages -c 'import attrs'    (after `goru deps install attrs`)
  goru --connect /tmp/goru.sock script.py";

/// Run untrusted Python and JavaScript in a WebAssembly sandbox.
///
/// The code gets no files, network, environment variables or host details;
/// it does get a real clock, random numbers, and the limits below. The
/// host's stdin becomes the guest's stdin, unless the code itself is read
/// from stdin.
#[derive(Debug, Parser)]
#[command(
    name = "goru",
    version = version(),
    after_help = EXIT_CODES,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// `goru FILE` is short for `goru run FILE`.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a script, inline code (`-c`) or code read from stdin (the default command).
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// An interactive session: state persists between entries and the value
    /// of an expression is printed (and kept in `_`).
    #[command(after_help = REPL_HELP)]
    Repl(ReplArgs),
    /// Install, list and remove the Python packages code can import with
    /// `--packages DIR` (pure-Python wheels only).
    #[command(after_help = DEPS_HELP)]
    Deps(DepsArgs),
}

const DEPS_HELP: &str = "\
Packages are pure-Python wheels (py3-none-any) from a package index (PyPI by
default), resolved with their dependencies for goru's Python (CPython 3.14 on
WebAssembly/WASI), each file checked against the index's sha256 and the
wheel's RECORD. Nothing from a package runs on this machine: no setup script,
no build step, no pip. Packages with compiled code (numpy, for one) cannot
run in the sandbox and are refused with the reason.

Examples:
  goru deps install attrs python-dateutil
  goru deps install 'pydantic<2' --dir ./pkgs    (pydantic 2 needs compiled code)
  goru deps list
  goru --packages .goru/packages -l python -c 'import attrs; print(attrs.__version__)'
  goru --packages .goru/packages --allow-install tabulate script.py";

/// `goru deps`.
#[derive(Debug, Args)]
pub struct DepsArgs {
    #[command(subcommand)]
    pub command: DepsCommand,
}

#[derive(Debug, Subcommand)]
pub enum DepsCommand {
    /// Install packages with their dependencies (newest versions that fit).
    Install {
        /// What to install: NAME, NAME[EXTRAS] or NAME with a PEP 440
        /// specifier, such as `attrs`, `'attrs>=23,<26'`, `'jinja2[i18n]'`.
        #[arg(value_name = "NAME[SPEC]", required = true)]
        packages: Vec<String>,
        #[command(flatten)]
        dir: PackagesDirArg,
        #[command(flatten)]
        index: IndexArg,
    },
    /// List the installed packages and their versions.
    List {
        #[command(flatten)]
        dir: PackagesDirArg,
    },
    /// Remove packages (their dependencies stay).
    Remove {
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
        #[command(flatten)]
        dir: PackagesDirArg,
    },
}

/// Where packages are installed.
#[derive(Debug, Args)]
pub struct PackagesDirArg {
    /// The packages directory (created when missing).
    #[arg(long, value_name = "DIR", default_value = ".goru/packages", env = env::PACKAGES_DIR)]
    pub dir: PathBuf,
}

/// Which index packages come from.
#[derive(Debug, Args)]
pub struct IndexArg {
    /// A package index with the simple API (PEP 691 JSON or PEP 503 HTML),
    /// such as a private mirror.
    #[arg(long = "index-url", value_name = "URL", env = env::INDEX_URL, default_value = goru_packages::DEFAULT_INDEX_URL)]
    pub index_url: String,
}

const REPL_HELP: &str = "\
Keys (on a terminal):
  Enter    run the entry once it is complete; a Python block (def, for, if, ...)
           ends with an empty line
  Ctrl-C   clear the pending input; while code runs, stop it (the session restarts)
  Ctrl-D   exit (on an empty line)
  Up/Down  history, kept in $XDG_STATE_HOME/goru (else ~/.local/state/goru);
           GORU_HISTORY names another file, or none when set but empty

Each entry runs with the limits above. An entry that hits one loses the
session: the error is shown and a fresh session starts. `sys.exit(n)` /
`std.exit(n)` ends the REPL with code n. The guest's stdin is empty.

When stdin is not a terminal, lines are read from it without prompts and run
entry by entry as typed lines would be; an unfinished entry at the end is run
as it is. The exit code is then 0, or 1 if any entry failed.

Examples:
  goru repl
  goru repl -l js --kv --timeout 5s
  printf 'x = 41\\nx + 1\\n' | goru repl -l py";

/// How to start `goru repl`.
#[derive(Debug, Args)]
pub struct ReplArgs {
    /// Language: `python` (`py`) or `javascript` (`js`), in any case
    /// [default: python].
    #[arg(short = 'l', long = "lang", value_name = "LANG", env = env::LANG)]
    pub lang: Option<String>,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub capabilities: CapabilityArgs,
}

/// What to run, how, and with what.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Language: `python` (`py`) or `javascript` (`js`), in any case. By
    /// default taken from the file's extension (.py, .js, .mjs).
    #[arg(short = 'l', long = "lang", value_name = "LANG", env = env::LANG)]
    pub lang: Option<String>,

    /// Run this code instead of a file; remaining arguments go to the code.
    #[arg(short = 'c', long = "code", value_name = "CODE")]
    pub code: Option<String>,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub capabilities: CapabilityArgs,

    /// Run the code in the goru daemon listening on this socket (started
    /// with `goru-daemon --socket SOCKET`) instead of in this process. Its
    /// output streams back as it is written; the guest's stdin is this
    /// process's stdin read to its end first (empty when it is a terminal);
    /// a limit left at its default is lowered to the daemon's maximum. Not
    /// for `goru repl`, which always runs in this process.
    #[arg(long, value_name = "SOCKET", env = env::CONNECT)]
    pub connect: Option<PathBuf>,

    /// Write how the run ended to FILE as JSON: `{"status": "timeout",
    /// "exitCode": 124, "durationMs": 2001.7}`. `status` is goru's verdict
    /// (`ok`, `exit`, `exception`, `timeout`, `memoryLimit`, `outputLimit`,
    /// `crashed`, `cancelled`), which the guest cannot fake: its own
    /// `sys.exit(124)` is `exit`, not `timeout`.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// The script to run (`-` or nothing: read the code from stdin).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Arguments for the script: `sys.argv[1:]` / `scriptArgs.slice(1)`.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// Limits of one run; each has a default that is safe for untrusted code.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Wall-clock limit for the run: `500ms`, `2s`, `1m`.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub timeout: String,

    /// Memory limit of the guest: `64MiB`, `512k`, `1g` (binary units).
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    pub memory: String,

    /// Output limit per stream (stdout, stderr); past it the run stops.
    #[arg(long = "max-output", value_name = "SIZE", default_value = "1MiB")]
    pub max_output: String,
}

/// Capabilities: everything is off unless a flag turns it on.
#[derive(Clone, Debug, Args)]
pub struct CapabilityArgs {
    /// Enable the `kv` module: a key-value store private to this run.
    #[arg(long)]
    pub kv: bool,

    /// Deterministic mode for reproducible runs: the clock starts at
    /// 2000-01-01T00:00:00Z and every random number comes from SEED (default 0).
    #[arg(long, value_name = "SEED", num_args = 0..=1, default_missing_value = "0", require_equals = true)]
    pub deterministic: Option<u64>,

    /// Mount the host directory HOST at GUEST for plain `open()` and the `fs`
    /// module (repeatable; the longest matching GUEST wins). MODE: `ro`
    /// reads; `rw` also overwrites existing files and removes (through `fs`;
    /// plain `open()` stays read-only); `rwc` also creates files and
    /// directories. Example: `--mount /data:./data:ro`.
    #[arg(long = "mount", value_name = "GUEST:HOST:MODE", value_parser = parse_mount)]
    pub mounts: Vec<Mount>,

    /// Enable the `http` module for this host (repeatable): `api.example.com`
    /// (https and http on their default ports), `api.example.com:8080`
    /// (both on that port), `*.example.com` (its subdomains),
    /// `127.0.0.1:8080`, `[::1]:8080`, or a URL such as
    /// `https://api.example.com` (that scheme only). Every redirect is
    /// checked too; local and private addresses are refused unless allowed
    /// literally.
    #[arg(long = "allow-host", value_name = "HOST", value_parser = parse_allowed_host)]
    pub allow_hosts: Vec<String>,

    /// Python packages installed in DIR (by `goru deps install --dir DIR`):
    /// mounted read-only at /packages and appended to `sys.path`.
    #[arg(long, value_name = "DIR")]
    pub packages: Option<PathBuf>,

    /// Let the code install NAME and its dependencies into the --packages
    /// directory with `install_pkg("NAME", ">=1.0")` (repeatable). Other
    /// names are refused.
    #[arg(long = "allow-install", value_name = "NAME", requires = "packages")]
    pub allow_install: Vec<String>,

    /// The package index `install_pkg` uses [default: PyPI's].
    #[arg(long = "index-url", value_name = "URL", env = env::INDEX_URL)]
    pub index_url: Option<String>,
}

/// The hint for a bad `--allow-host`.
pub const ALLOW_HOST_HINT: &str = "allow a host with `--allow-host api.example.com` (https and \
                                   http), `--allow-host 127.0.0.1:8080` or `--allow-host \
                                   https://api.example.com` (that scheme only)";

/// The hint for a bad `--mount`.
pub const MOUNT_HINT: &str = "mount a directory with `--mount GUEST:HOST:MODE`, MODE one of \
                              `ro`, `rw`, `rwc` (e.g. `--mount /data:./data:ro`)";

/// Checks one `--allow-host` entry with the one parser of entries, the one
/// the daemon and the engine use too.
fn parse_allowed_host(entry: &str) -> Result<String, String> {
    HttpCapability::allowing([entry])
        .validate()
        .map_err(|e| format!("{e}\nhint: {ALLOW_HOST_HINT}"))?;
    Ok(entry.to_string())
}

/// Parses and checks one `--mount`; a relative HOST is taken against the
/// current directory.
fn parse_mount(spec: &str) -> Result<Mount, String> {
    let with_hint = |e: &dyn std::fmt::Display| format!("{e}\nhint: {MOUNT_HINT}");
    let mut mount: Mount = spec.parse().map_err(|e: MountError| with_hint(&e))?;
    mount.host = std::path::absolute(&mount.host)
        .map_err(|e| with_hint(&format_args!("cannot use `{}`: {e}", mount.host.display())))?;
    let single = Capabilities {
        mounts: vec![mount.clone()],
        ..Capabilities::none()
    };
    // The checks of capabilities, on this mount alone (mounts are the same
    // for every language).
    goru_runtimes::check_capabilities(&single, Language::Python).map_err(|e| with_hint(&e))?;
    Ok(mount)
}

fn version() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (CPython 3.14 via componentize-py 0.25.1, QuickJS-NG 0.16.2, wasmtime 48.0.8)"
    )
}

/// Environment variables the CLI reads, each documented in `--help` or here.
pub mod env {
    /// Default for `--lang`.
    pub const LANG: &str = "GORU_LANG";
    /// Default for `--connect` (`goru run` only).
    pub const CONNECT: &str = "GORU_CONNECT";
    /// Disables colours when set to anything.
    pub const NO_COLOR: &str = "NO_COLOR";
    /// The file `goru repl` keeps its history in; empty: keep it in memory
    /// only. Default: `$XDG_STATE_HOME/goru/repl-history-LANG`, else
    /// `~/.local/state/goru/repl-history-LANG`.
    pub const HISTORY: &str = "GORU_HISTORY";
    /// Default for `goru deps --dir`.
    pub const PACKAGES_DIR: &str = "GORU_PACKAGES_DIR";
    /// Default for `--index-url` (`goru deps install`, `install_pkg`).
    pub const INDEX_URL: &str = "GORU_INDEX_URL";
}
