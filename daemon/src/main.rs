//! `goru-daemon`: serves goru sandboxes over JSON-RPC on stdio or a socket.

use clap::Parser;
use goru_daemon::{CapabilityLimits, Config, ConnectionEnd, Daemon, Policy, PolicyError};
use goru_runtimes::{
    DEFAULT_MAX_INSTANCES, Engine, Language, Limits, exit_code, parse_duration, parse_size,
};
use std::path::PathBuf;
use std::time::Duration;

/// The `--help` heading of the flags that bound what clients may grant.
const POLICY: &str = "Policy (what clients may grant)";

/// Serves goru sandboxes over JSON-RPC 2.0 (LSP-style framing), to one
/// client on stdio or to many on a local socket. See docs/protocol.md.
#[derive(Parser, Debug)]
#[command(name = "goru-daemon", version)]
#[command(group = clap::ArgGroup::new("transport").required(true).args(["stdio", "socket"]))]
struct Args {
    /// Serve one client on stdin/stdout (as an editor or agent spawns it).
    #[arg(long)]
    stdio: bool,
    /// Listen on this Unix socket (created owner-only; a dead daemon's socket is replaced).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Live sessions in all.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_sessions)]
    max_sessions: usize,
    /// Live sessions per client id.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_sessions_per_client)]
    max_sessions_per_client: usize,
    /// Close a session after this long without a run.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    idle_timeout: Duration,
    /// Keep a disconnected client's sessions this long for it to reconnect.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    reconnect_grace: Duration,
    /// The largest incoming message.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = size)]
    max_frame: u64,
    /// Requests one connection may have in progress.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_in_flight_requests)]
    max_in_flight: usize,
    /// Socket connections at once.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_connections)]
    max_connections: usize,
    /// Socket connections at once that have not initialized yet; with this
    /// many, a new connection closes the oldest of them.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_uninitialized_connections)]
    max_uninitialized: usize,
    /// Close a socket connection that has not initialized after this long.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    initialize_timeout: Duration,
    /// The longest run a client may ask for (also the default).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    timeout: Duration,
    /// The most memory a client may ask for (also the default).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = size)]
    memory: u64,
    /// The most output per stream and run a client may ask for (also the default).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = size)]
    max_output: u64,
    /// The most open files (host files and directories a session holds
    /// open at once) a client may ask for (also the default).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_open_files)]
    max_open_files: u64,
    /// Clients may mount this directory or anything beneath it, after
    /// links and `..` are resolved (repeatable). Any policy flag makes the
    /// policy closed: what no flag allows is refused.
    #[arg(long, value_name = "DIR", help_heading = POLICY)]
    allow_mount_root: Vec<PathBuf>,
    /// Every `http.allow` entry a client sends must be covered by one of
    /// these, written as `--allow-host` takes them (repeatable).
    #[arg(long, value_name = "ENTRY", help_heading = POLICY)]
    allow_http_host: Vec<String>,
    /// Clients may use this directory, or one beneath it, as their
    /// packages directory (repeatable).
    #[arg(long, value_name = "DIR", help_heading = POLICY)]
    allow_packages_dir: Vec<PathBuf>,
    /// Clients may list this package in `allowInstall` (repeatable).
    #[arg(long, value_name = "NAME", help_heading = POLICY)]
    allow_install: Vec<String>,
    /// Clients may give this `indexUrl` for installs; the default index
    /// is always allowed where installs are (repeatable).
    #[arg(long, value_name = "URL", help_heading = POLICY)]
    allow_index_url: Vec<String>,
    /// Clients may not turn on the `kv` module.
    #[arg(long, help_heading = POLICY)]
    deny_kv: bool,
    /// Sandboxes of each language kept created and initialised ahead of
    /// time, so that `run` and `session/create` take one instead of
    /// instantiating (0: none).
    #[arg(long, value_name = "N", default_value_t = 4)]
    warm_pool: usize,
}

/// The largest warm pool per language: each instance holds memory.
const MAX_WARM_POOL: usize = 256;

/// Room in the engine's instance pool for every live session, the warm
/// pools, and sessions still being torn down.
fn max_instances(max_sessions: usize, warm_pool: usize) -> u32 {
    let needed = max_sessions
        .saturating_add(warm_pool.saturating_mul(Language::ALL.len()))
        .saturating_add(64);
    u32::try_from(needed)
        .unwrap_or(u32::MAX)
        .max(DEFAULT_MAX_INSTANCES)
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

fn size(text: &str) -> Result<u64, String> {
    parse_size(text).map_err(|e| e.to_string())
}

fn positive(name: &str, value: usize) -> Result<usize, String> {
    if value == 0 {
        Err(format!("--{name} must be at least 1"))
    } else {
        Ok(value)
    }
}

fn config(args: &Args) -> Result<Config, String> {
    let session_limits = Limits {
        timeout: args.timeout,
        memory_bytes: args.memory,
        max_output_bytes: args.max_output,
        max_open_files: args.max_open_files,
        ..Limits::default()
    };
    session_limits.validate().map_err(|e| e.to_string())?;
    if args.warm_pool > MAX_WARM_POOL {
        return Err(format!("--warm-pool must be at most {MAX_WARM_POOL}"));
    }
    Ok(Config {
        max_sessions: positive("max-sessions", args.max_sessions)?,
        max_sessions_per_client: positive("max-sessions-per-client", args.max_sessions_per_client)?,
        idle_timeout: args.idle_timeout,
        reconnect_grace: args.reconnect_grace,
        max_frame_bytes: usize::try_from(args.max_frame)
            .ok()
            .filter(|&n| n >= 1024)
            .ok_or("--max-frame must be at least 1KiB")?,
        max_in_flight_requests: positive("max-in-flight", args.max_in_flight)?,
        max_connections: positive("max-connections", args.max_connections)?,
        max_uninitialized_connections: positive("max-uninitialized", args.max_uninitialized)?,
        initialize_timeout: Some(args.initialize_timeout)
            .filter(|t| !t.is_zero())
            .ok_or("--initialize-timeout must be more than 0")?,
        session_limits,
        capability_limits: CapabilityLimits::default(),
        policy: policy(args).map_err(|err| err.to_string())?,
    })
}

/// The operator's policy from the flags: open when none is given.
fn policy(args: &Args) -> Result<Policy, PolicyError> {
    let mut policy = Policy::open();
    for dir in &args.allow_mount_root {
        policy.allow_mount_root(dir)?;
    }
    for entry in &args.allow_http_host {
        policy.allow_http_host(entry)?;
    }
    for dir in &args.allow_packages_dir {
        policy.allow_packages_dir(dir)?;
    }
    for name in &args.allow_install {
        policy.allow_install(name)?;
    }
    for url in &args.allow_index_url {
        policy.allow_index_url(url)?;
    }
    if args.deny_kv {
        policy.deny_kv();
    }
    Ok(policy)
}

fn fail(message: &str, code: i32) -> i32 {
    eprintln!("goru-daemon: error: {message}");
    code
}

/// Raises this process's soft limit on open descriptors to its hard limit.
/// Threat: every connection and every file a guest opens takes one, and
/// the soft limit is often 1,024 where the hard one is far higher.
fn raise_descriptor_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // An unlimited hard limit cannot be the soft one (Linux caps it at
    // nr_open): keep the soft limit then.
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
        && current < maximum
        && let Err(err) = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            },
        )
    {
        eprintln!(
            "goru-daemon: cannot raise the open-file limit from {current} to {maximum}: {err}"
        );
    }
}

fn main() {
    let args = Args::parse();
    raise_descriptor_limit();
    let config = match config(&args) {
        Ok(config) => config,
        Err(message) => std::process::exit(fail(&message, exit_code::USAGE)),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => std::process::exit(fail(&format!("cannot start: {err}"), exit_code::INTERNAL)),
    };
    let code = runtime.block_on(serve(args, config));
    // Not dropping the runtime: it would wait for idle blocking threads.
    std::process::exit(code)
}

async fn serve(args: Args, config: Config) -> i32 {
    // Compile (or load from the cache) both guests before taking clients,
    // so that no request pays for it.
    let mut engine = Engine::builder();
    engine.max_instances(max_instances(config.max_sessions, args.warm_pool));
    for language in Language::ALL {
        engine.warm_pool(language, args.warm_pool);
    }
    let engine = match engine.build() {
        Ok(engine) => engine,
        Err(err) => return fail(&err.to_string(), exit_code::INTERNAL),
    };
    for language in Language::ALL {
        if let Err(err) = engine.prepare(language) {
            return fail(&err.to_string(), exit_code::INTERNAL);
        }
    }
    let daemon = Daemon::new(engine, config);
    if args.stdio {
        let end = daemon
            .serve_connection(tokio::io::stdin(), tokio::io::stdout())
            .await;
        // As LSP: 0 after `shutdown` + `exit`, 1 otherwise. Exit at once:
        // the runtime would wait for a blocked stdin read otherwise.
        std::process::exit(if end == ConnectionEnd::Clean { 0 } else { 1 });
    }
    let path = args.socket.expect("clap requires --stdio or --socket");
    let listener = match goru_daemon::socket::bind(&path) {
        Ok(listener) => listener,
        Err(err) => return fail(&err.to_string(), exit_code::USAGE),
    };
    eprintln!("goru-daemon: listening on {}", path.display());
    let stop = async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match terminate.as_mut() {
                    Some(signal) => { signal.recv().await; }
                    None => std::future::pending().await,
                }
            } => {}
        }
    };
    // Either way the listener is dropped here, which removes the socket file.
    tokio::select! {
        result = listener.serve(daemon) => match result {
            Ok(()) => 0,
            Err(err) => fail(&format!("cannot accept connections: {err}"), exit_code::INTERNAL),
        },
        () = stop => {
            eprintln!("goru-daemon: stopping");
            0
        }
    }
}
