//! `goru deps`: install, list and remove the pure-Python packages a sandbox
//! imports with `--packages DIR`.

use crate::cli::{DepsArgs, DepsCommand};
use crate::fatal::Fatal;
use crate::report;
use crate::runtime::async_runtime;
use goru_packages::{Error, Event, Installer, PackageDir, Progress, Request};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub fn main(args: DepsArgs) -> Result<i32, Fatal> {
    match args.command {
        DepsCommand::Install {
            packages,
            dir,
            index,
        } => install(&packages, &dir.dir, &index.index_url),
        DepsCommand::List { dir } => list(&dir.dir),
        DepsCommand::Remove { names, dir } => remove(&names, &dir.dir),
    }
}

fn install(packages: &[String], dir: &Path, index_url: &str) -> Result<i32, Fatal> {
    let requests = packages
        .iter()
        .map(|p| Request::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Fatal::usage(
                e.to_string(),
                Some(
                    "name packages as NAME or NAME SPEC, e.g. `attrs` or `'attrs>=23,<26'`".into(),
                ),
            )
        })?;
    let installer = Installer::new(index_url).map_err(|e| {
        Fatal::usage(
            e.to_string(),
            Some(
                "give an http(s) simple index URL, e.g. `--index-url https://pypi.org/simple`"
                    .into(),
            ),
        )
    })?;
    let target = PackageDir::create(dir).map_err(failure)?;
    let runtime = async_runtime()?;
    let progress = Arc::new(DownloadProgress::new());
    let result = runtime.block_on(installer.install(&target, &requests, progress.clone()));
    progress.clear();
    let index_url = goru_packages::redact_url(installer.index_url());
    let report = result.map_err(|e| install_failure(e, &index_url))?;
    let mut stdout = std::io::stdout().lock();
    for package in &report.installed {
        let _ = writeln!(stdout, "installed {} {}", package.name, package.version);
    }
    for package in &report.unchanged {
        let _ = writeln!(
            stdout,
            "already installed {} {}",
            package.name, package.version
        );
    }
    for package in &report.replaced {
        let _ = writeln!(
            stdout,
            "removed {} {} (replaced)",
            package.name, package.version
        );
    }
    Ok(0)
}

fn list(dir: &Path) -> Result<i32, Fatal> {
    if !dir.exists() {
        // Nothing installed yet is not an error.
        return Ok(0);
    }
    let installed = PackageDir::open(dir)
        .and_then(|d| d.list())
        .map_err(failure)?;
    let width = installed.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let mut stdout = std::io::stdout().lock();
    for package in installed {
        let _ = writeln!(stdout, "{:width$}  {}", package.name, package.version);
    }
    Ok(0)
}

fn remove(names: &[String], dir: &Path) -> Result<i32, Fatal> {
    let target = PackageDir::open(dir).map_err(failure)?;
    for name in names {
        let removed = target.remove(name).map_err(|e| match e {
            Error::NotInstalled { .. } => Fatal {
                message: e.to_string(),
                hint: Some(format!(
                    "`goru deps list --dir {}` shows what is installed",
                    dir.display()
                )),
                code: 1,
            },
            Error::InvalidName { .. } => Fatal::usage(e.to_string(), None),
            e => failure(e),
        })?;
        println!("removed {} {}", removed.name, removed.version);
    }
    Ok(0)
}

fn failure(error: Error) -> Fatal {
    let hint = match &error {
        Error::UnsafePath { .. } => Some(
            "goru follows no link in or on the way to a packages directory, and locks only a \
             regular file (a sandbox with a writable mount could have planted either): remove \
             it, or give the directory's real path with `--dir`"
                .to_string(),
        ),
        _ => None,
    };
    Fatal {
        message: error.to_string(),
        hint,
        code: 1,
    }
}

fn install_failure(error: Error, index_url: &str) -> Fatal {
    if matches!(error, Error::UnsafePath { .. }) {
        return failure(error);
    }
    let hint = match &error {
        Error::Index { .. } => Some(format!(
            "nothing was installed; check the network, or name another index with \
             `--index-url URL` (or GORU_INDEX_URL); this one is {index_url}"
        )),
        Error::InvalidIndexPage { .. } => Some(format!(
            "nothing was installed; {index_url} does not serve a simple index (PEP 691 or \
             PEP 503): name another with `--index-url URL`"
        )),
        Error::NotFound { .. } => Some("check the name's spelling".to_string()),
        Error::HashMismatch { .. } | Error::MissingHash { .. } | Error::UnsafeArchive { .. } => {
            Some("nothing was installed".to_string())
        }
        _ => None,
    };
    Fatal {
        message: error.to_string(),
        hint,
        code: 1,
    }
}

/// Downloads on stderr: a line per finished file, and on a terminal a
/// status line that counts the bytes of the current one.
struct DownloadProgress {
    terminal: bool,
    status_shown: Mutex<bool>,
}

impl DownloadProgress {
    fn new() -> Self {
        DownloadProgress {
            terminal: std::io::stderr().is_terminal(),
            status_shown: Mutex::new(false),
        }
    }

    fn status(&self, line: &str) {
        if !self.terminal {
            return;
        }
        let mut shown = self.status_shown.lock().unwrap_or_else(|e| e.into_inner());
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2K{line}");
        let _ = stderr.flush();
        *shown = true;
    }

    fn clear(&self) {
        let mut shown = self.status_shown.lock().unwrap_or_else(|e| e.into_inner());
        if *shown {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
            *shown = false;
        }
    }
}

impl Progress for DownloadProgress {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Resolving { name } => self.status(&format!("resolving {name}")),
            Event::Download { file, done, total } => {
                let total = total.map(|t| format!(" / {}", size(t))).unwrap_or_default();
                self.status(&format!("downloading {file}  {}{total}", size(done)));
            }
            Event::Downloaded { file, bytes } => {
                self.clear();
                report::progress(&format!(
                    "downloaded {file} ({}), sha256 checked",
                    size(bytes)
                ));
            }
            _ => {}
        }
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
