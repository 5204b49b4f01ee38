//! The settings layer: the parsed arguments (`cli.rs`) turned into what a
//! run needs (the engine's limits, the capabilities, the program and the
//! report file), checked here once for the in-process run, `--connect` and
//! the REPL alike, which then only consume them.

use crate::cli::{self, CapabilityArgs, LimitArgs, ReplArgs, RunArgs};
use crate::fatal::Fatal;
use crate::verdict::ReportFile;
use goru_runtimes::{
    Capabilities, CapabilityError, Deterministic, HttpCapability, HttpConfigError, KvLimits,
    Language, Limits, MountError, PackagesCapability, PackagesConfigError, Stdin, parse_duration,
    parse_size,
};
use std::io::Read;
use std::path::Path;

/// What `goru` / `goru run` was asked to do.
pub(crate) struct RunSettings {
    pub(crate) limits: Limits,
    /// As the flags grant them, checked for the program's language.
    pub(crate) capabilities: Capabilities,
    /// `--report FILE`, created.
    pub(crate) report: Option<ReportFile>,
    pub(crate) program: Program,
}

impl RunSettings {
    /// In the order the flags are checked and reported: limits, then the
    /// report file (created), then the program (read), then the
    /// capabilities (their check needs the program's language).
    pub(crate) fn resolve(args: RunArgs) -> Result<Self, Fatal> {
        let limits = limits(&args.limits)?;
        let capabilities = capabilities(&args.capabilities);
        let report = args.report.as_deref().map(ReportFile::create).transpose()?;
        let program = program(args)?;
        let capabilities = checked(capabilities, program.language)?;
        Ok(RunSettings {
            limits,
            capabilities,
            report,
            program,
        })
    }
}

/// What `goru repl` was asked to do.
pub(crate) struct ReplSettings {
    pub(crate) language: Language,
    pub(crate) limits: Limits,
    /// Checked against the language.
    pub(crate) capabilities: Capabilities,
}

impl ReplSettings {
    pub(crate) fn resolve(args: &ReplArgs) -> Result<Self, Fatal> {
        let language = match args.lang.as_deref() {
            None => Language::Python,
            Some(name) => name.parse::<Language>().map_err(|err| {
                Fatal::usage(
                    err.to_string(),
                    Some("use `--lang python` or `--lang js`".to_string()),
                )
            })?,
        };
        let limits = limits(&args.limits)?;
        let capabilities = checked(capabilities(&args.capabilities), language)?;
        Ok(ReplSettings {
            language,
            limits,
            capabilities,
        })
    }
}

/// The code to run, where it came from, and what the guest's stdin is.
pub(crate) struct Program {
    pub(crate) language: Language,
    pub(crate) code: String,
    pub(crate) filename: String,
    pub(crate) argv: Vec<String>,
    pub(crate) stdin: Stdin,
}

/// What the capability flags grant (shared by `goru run` and `goru repl`),
/// not yet checked: see [`checked`].
fn capabilities(args: &CapabilityArgs) -> Capabilities {
    Capabilities {
        kv: args.kv.then(KvLimits::default),
        deterministic: args.deterministic.map(|seed| Deterministic {
            seed,
            ..Deterministic::default()
        }),
        mounts: args.mounts.clone(),
        http: (!args.allow_hosts.is_empty())
            .then(|| HttpCapability::allowing(args.allow_hosts.iter().cloned())),
        packages: args.packages.as_ref().map(|dir| PackagesCapability {
            // Absolute, so that it means the same to a daemon (`--connect`).
            dir: std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
            allow_install: args.allow_install.clone(),
            index_url: args.index_url.clone(),
        }),
        ..Capabilities::none()
    }
}

/// The capabilities, checked for a run in `language` by the one check the
/// engine and the daemon use. Each `--mount` and `--allow-host` was checked
/// when parsed; this catches a mount point given twice, and everything
/// about packages.
fn checked(capabilities: Capabilities, language: Language) -> Result<Capabilities, Fatal> {
    goru_runtimes::check_capabilities(&capabilities, language)
        .map_err(|err| capability_error(&err, language))?;
    Ok(capabilities)
}

/// Capabilities the flags gave that cannot be used, with a hint for the
/// flag at fault: every variant is matched, so a new one needs its hint.
fn capability_error(err: &CapabilityError, language: Language) -> Fatal {
    const DEPS_HINT: &str = "install packages into a directory with `goru deps install NAME \
                             --dir DIR`, then run with `--packages DIR`";
    let hint = match err {
        CapabilityError::Mount {
            error: MountError::Duplicate(_),
            ..
        } => "give each mount point once: `--mount GUEST:HOST:MODE`",
        CapabilityError::Mount {
            error:
                MountError::BadSpec(_)
                | MountError::BadMode(_)
                | MountError::BadGuestPath { .. }
                | MountError::RelativeHost(_)
                | MountError::Host { .. },
            ..
        } => cli::MOUNT_HINT,
        CapabilityError::Http(HttpConfigError::BadEntry { .. }) => cli::ALLOW_HOST_HINT,
        // The command line sets no http timeout.
        CapabilityError::Http(HttpConfigError::Timeout(_)) => {
            return Fatal::usage(err.to_string(), None);
        }
        CapabilityError::Packages(PackagesConfigError::PythonOnly) => {
            return Fatal::usage(
                format!("`--packages` is for Python only; this is {language}"),
                Some("run Python code (`-l python`), or leave out `--packages`".to_string()),
            );
        }
        CapabilityError::Packages(
            PackagesConfigError::Dir { .. }
            | PackagesConfigError::RelativeDir(_)
            | PackagesConfigError::AllowList { .. }
            | PackagesConfigError::Index(_),
        ) => DEPS_HINT,
    };
    Fatal::usage(err.to_string(), Some(hint.to_string()))
}

pub(crate) fn limits(args: &LimitArgs) -> Result<Limits, Fatal> {
    let bad = |flag: &str, err: goru_runtimes::LimitError| {
        Fatal::usage(format!("`--{flag}`: {err}"), None)
    };
    let limits = Limits {
        timeout: parse_duration(&args.timeout).map_err(|e| bad("timeout", e))?,
        memory_bytes: parse_size(&args.memory).map_err(|e| bad("memory", e))?,
        max_output_bytes: parse_size(&args.max_output).map_err(|e| bad("max-output", e))?,
        ..Limits::default()
    };
    limits
        .validate()
        .map_err(|err| Fatal::usage(err.to_string(), None))?;
    Ok(limits)
}

pub(crate) fn program(cli: RunArgs) -> Result<Program, Fatal> {
    let named = cli
        .lang
        .as_deref()
        .map(|name| {
            name.parse::<Language>().map_err(|err| {
                Fatal::usage(
                    err.to_string(),
                    Some("use `--lang python` or `--lang js`".to_string()),
                )
            })
        })
        .transpose()?;
    let file = cli.file.filter(|f| f.as_os_str() != "-");
    if let Some(code) = cli.code {
        // As with `python -c`: every positional argument belongs to the code.
        let mut argv = vec!["-c".to_string()];
        argv.extend(file.map(|f| f.to_string_lossy().into_owned()));
        argv.extend(cli.args);
        let language = named.ok_or_else(|| missing_language("code given with `-c`"))?;
        return Ok(Program {
            language,
            code,
            filename: "<string>".into(),
            argv,
            stdin: Stdin::Inherit,
        });
    }
    match file {
        Some(path) => {
            let language = named
                .or_else(|| Language::from_path(&path))
                .ok_or_else(|| missing_language(&format!("`{}`", path.display())))?;
            let code = read_source(&path)?;
            let display = path.to_string_lossy().into_owned();
            let mut argv = vec![display.clone()];
            argv.extend(cli.args);
            Ok(Program {
                language,
                code,
                filename: display,
                argv,
                stdin: Stdin::Inherit,
            })
        }
        None => {
            let language = named.ok_or_else(|| missing_language("code read from stdin"))?;
            let code = read_stdin_utf8("the code from stdin", "save the source as UTF-8")?;
            let mut argv = vec!["-".to_string()];
            argv.extend(cli.args);
            Ok(Program {
                language,
                code,
                filename: "<stdin>".into(),
                argv,
                // The code came from stdin, so the guest's stdin is empty.
                stdin: Stdin::Empty,
            })
        }
    }
}

fn missing_language(what: &str) -> Fatal {
    Fatal::usage(
        format!("cannot tell the language of {what}"),
        Some(
            "name it with `--lang python` or `--lang js`, or use a `.py` / `.js` file".to_string(),
        ),
    )
}

fn read_source(path: &Path) -> Result<String, Fatal> {
    if path.is_dir() {
        return Err(Fatal::usage(
            format!("`{}` is a directory", path.display()),
            Some("give the path of a script file".to_string()),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|err| Fatal::usage(format!("cannot read `{}`: {err}", path.display()), None))?;
    String::from_utf8(bytes).map_err(|err| {
        Fatal::usage(
            format!(
                "`{}` is not valid UTF-8 (at byte {})",
                path.display(),
                err.utf8_error().valid_up_to()
            ),
            Some("save the source as UTF-8".to_string()),
        )
    })
}

/// This process's stdin read to its end as UTF-8 text; `what` names it in
/// messages (`stdin`, `the code from stdin`).
pub(crate) fn read_stdin_utf8(what: &str, hint: &str) -> Result<String, Fatal> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|err| Fatal::usage(format!("cannot read {what}: {err}"), None))?;
    String::from_utf8(bytes).map_err(|err| {
        Fatal::usage(
            format!(
                "{what} is not valid UTF-8 (at byte {})",
                err.utf8_error().valid_up_to()
            ),
            Some(hint.to_string()),
        )
    })
}
