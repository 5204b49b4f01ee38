//! Every built-in module, one line each. The table drives the modules'
//! set-up and their checks on the host ([`crate::check_capabilities`]),
//! the message a guest gets from a module that is off, which sessions can
//! take a warm-pool instance, and the lists the guests and the docs test
//! are checked against (the tests below; `goru_modules.py` names the Python
//! wrappers, the JS guest embeds every `NAME/NAME.js`).
//!
//! A new module is a folder `modules/NAME/` (host code in `mod.rs`, the
//! wrappers `NAME.py` / `NAME.js`), its config in goru-protocol's
//! `capabilities`, and one entry here.

use super::{Setup, SetupResult, fs, http, kv, packages};
use crate::{Capabilities, Capability, CapabilityError};

/// One built-in module.
pub(crate) struct ModuleSpec {
    /// The prefix of its functions (`goru:kv.get`) and its folder's name.
    pub name: &'static str,
    /// The capability that turns it on.
    pub capability: Capability,
    /// What the guest is told when it is off.
    pub disabled: Disabled,
    /// Whether a session with these capabilities can still take a warm-pool
    /// instance as far as this module goes: one whose state lives on the
    /// host side only can; one that is part of the WASI context (preopened
    /// directories) or of `init` (`sys.path`) cannot.
    pub warm_pool: fn(&Capabilities) -> bool,
    /// Its checks that need the host, after `Capabilities::validate`.
    pub check_host: fn(&Capabilities) -> Result<(), CapabilityError>,
    /// Its state for a session; `None` when the capabilities leave it off.
    pub setup: fn(&Capabilities, &Setup) -> SetupResult,
    /// Its guest wrappers, beside its host code (`kv.py`, `kv.js`).
    pub wrappers: &'static [&'static str],
    /// What the Python wrapper installs as globals: the module itself
    /// (`kv`) or its functions (`install_pkg`).
    pub python_globals: &'static [&'static str],
}

/// How a module that is off is explained to the guest.
pub(crate) enum Disabled {
    /// "the `NAME` module is not enabled in this sandbox", with the flag and
    /// the option of its capability.
    Standard,
    /// A message of its own, where the capability is not the module's name.
    Own(&'static str),
}

impl ModuleSpec {
    /// The `PermissionError` message for calling it while it is off.
    pub(crate) fn disabled_message(&self) -> String {
        match self.disabled {
            Disabled::Standard => format!(
                "the `{module}` module is not enabled in this sandbox \
                 (enable it with `{flag}` on the command line, or the `{option}` capability)",
                module = self.name,
                flag = self.capability.flag_usage(),
                option = self.capability.option(),
            ),
            Disabled::Own(message) => message.to_string(),
        }
    }
}

fn always(_: &Capabilities) -> bool {
    true
}

fn nothing_to_check(_: &Capabilities) -> Result<(), CapabilityError> {
    Ok(())
}

/// The built-in modules.
pub(crate) const MODULES: &[ModuleSpec] = &[
    ModuleSpec {
        name: "kv",
        capability: Capability::Kv,
        disabled: Disabled::Standard,
        warm_pool: always,
        check_host: nothing_to_check,
        setup: kv::setup,
        wrappers: &["kv.py", "kv.js"],
        python_globals: &["kv"],
    },
    ModuleSpec {
        name: "fs",
        capability: Capability::Mounts,
        disabled: Disabled::Own(
            "the `fs` module is not enabled in this sandbox: no directory is mounted \
             (mount one with `--mount GUEST:HOST:ro` on the command line, \
             or the `mounts` capability)",
        ),
        warm_pool: |capabilities| capabilities.mounts.is_empty(),
        check_host: fs::check_host,
        setup: fs::setup,
        wrappers: &["fs.py", "fs.js"],
        python_globals: &["fs"],
    },
    ModuleSpec {
        name: "http",
        capability: Capability::Http,
        disabled: Disabled::Standard,
        warm_pool: always,
        check_host: nothing_to_check,
        setup: http::setup,
        wrappers: &["http.py", "http.js"],
        python_globals: &["http"],
    },
    ModuleSpec {
        name: "packages",
        capability: Capability::Packages,
        disabled: Disabled::Own(
            "installing packages is not enabled in this sandbox: it has no packages \
             directory (give one with `--packages DIR` and allow names with \
             `--allow-install NAME` on the command line, or the `packages` capability)",
        ),
        warm_pool: |capabilities| capabilities.packages.is_none(),
        check_host: packages::check_host,
        setup: packages::setup,
        wrappers: &["packages.py"],
        python_globals: &["install_pkg"],
    },
];

/// Whether every module lets a session with `capabilities` take a
/// warm-pool instance.
pub(crate) fn warm_pool_allows(capabilities: &Capabilities) -> bool {
    MODULES.iter().all(|spec| (spec.warm_pool)(capabilities))
}

/// The globals the built-in modules give a guest in `language`: each
/// module's own (`kv`), and in Python the functions a module installs
/// instead (`install_pkg`).
pub fn guest_globals(language: crate::Language) -> Vec<&'static str> {
    MODULES
        .iter()
        .flat_map(|spec| match language {
            crate::Language::Python => spec.python_globals.to_vec(),
            crate::Language::JavaScript => {
                let js = format!("{}.js", spec.name);
                match spec.wrappers.contains(&js.as_str()) {
                    true => vec![spec.name],
                    false => Vec::new(),
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn modules_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/modules")
    }

    #[test]
    fn every_module_folder_is_in_the_registry_with_its_wrappers() {
        let folders: BTreeSet<String> = std::fs::read_dir(modules_dir())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_dir())
            .map(|path| path.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        let registered: BTreeSet<String> = MODULES.iter().map(|m| m.name.to_string()).collect();
        assert_eq!(folders, registered);
        for spec in MODULES {
            let dir = modules_dir().join(spec.name);
            let wrappers: BTreeSet<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .filter(|name| name.ends_with(".py") || name.ends_with(".js"))
                .collect();
            let listed: BTreeSet<String> = spec.wrappers.iter().map(|w| w.to_string()).collect();
            assert_eq!(wrappers, listed, "the wrappers in {}", dir.display());
        }
    }

    #[test]
    fn the_python_guest_installs_the_registered_globals() {
        // The guest's list of modules (`MODULES`, `FUNCTIONS`), read as text:
        // a module added here must be added there too (the guest builder
        // stages every NAME.py, the prelude imports those listed).
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("guests/python/goru_modules.py");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut listed: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("MODULES = (") || line.starts_with("FUNCTIONS = {"))
            .flat_map(|line| line.split('"').skip(1).step_by(2))
            .collect();
        listed.sort();
        let mut registered = guest_globals(crate::Language::Python);
        // `FUNCTIONS` maps a function to its module: both are named there.
        registered.extend(
            MODULES
                .iter()
                .filter(|spec| !spec.python_globals.contains(&spec.name))
                .map(|spec| spec.name),
        );
        registered.sort();
        assert_eq!(listed, registered, "{}", path.display());
    }

    #[test]
    fn disabled_messages_name_the_flag_and_the_capability() {
        for spec in MODULES {
            let message = spec.disabled_message();
            assert!(
                message.contains(spec.capability.flag_usage()),
                "{}: {message}",
                spec.name
            );
            assert!(
                message.contains(&format!("the `{}` capability", spec.capability.option())),
                "{}: {message}",
                spec.name
            );
        }
        assert_eq!(
            MODULES[0].disabled_message(),
            "the `kv` module is not enabled in this sandbox (enable it with `--kv` on the \
             command line, or the `kv` capability)"
        );
    }

    #[test]
    fn modules_on_the_wasi_context_keep_sessions_off_the_warm_pool() {
        assert!(warm_pool_allows(&Capabilities::none()));
        let mut kv_and_http = Capabilities::none();
        kv_and_http.kv = Some(Default::default());
        kv_and_http.http = Some(crate::HttpCapability::allowing(["example.com"]));
        assert!(warm_pool_allows(&kv_and_http));
        let mut mounts = Capabilities::none();
        mounts.mounts = vec![crate::Mount::new("/d", "/tmp", crate::MountMode::Ro)];
        assert!(!warm_pool_allows(&mounts));
        let mut packages = Capabilities::none();
        packages.packages = Some(crate::PackagesCapability::new("/tmp"));
        assert!(!warm_pool_allows(&packages));
    }
}
