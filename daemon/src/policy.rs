//! The operator's policy: what clients may grant their sessions.
//!
//! Threat: on a shared socket every client is a stranger, and a capability
//! is host authority: a mount reads (or writes) any directory the daemon's
//! user can, an `http` entry reaches any host (an IP entry reaches the
//! loopback and private addresses the resolver otherwise refuses), a
//! packages directory is written by `install_pkg`, an index URL makes the
//! daemon fetch from wherever it points. The limits inside capabilities
//! have a ceiling ([`crate::CapabilityLimits`]); this is the same for the
//! capabilities themselves.
//!
//! [`Policy::open`] (the default, when the operator gives no policy flag)
//! allows everything the daemon's user could do, as a single-user socket
//! always has. Any rule makes it closed: then only what the rules allow is
//! granted, and the rest refused with a [`Refusal`] naming the rule. One
//! check, [`Policy::check`], at the boundary where the client's JSON
//! becomes the engine's capabilities.

use goru_runtimes::{AllowEntry, BadEntry, Capabilities};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What clients may grant; see the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// `None`: open, everything allowed.
    rules: Option<Rules>,
}

/// A closed policy's rules. Each empty list allows none of that kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Rules {
    /// Canonical (absolute, no links) directories; a mount's host path
    /// must be one of them or beneath one.
    mount_roots: Vec<PathBuf>,
    /// Every `http.allow` entry must be covered by one of these.
    http_hosts: Vec<AllowEntry>,
    /// Canonical directories a packages `dir` must be, or be beneath.
    packages_dirs: Vec<PathBuf>,
    /// PEP 503-normalized names `allowInstall` may list.
    install: BTreeSet<String>,
    /// Index URLs (without a trailing `/`) a packages `indexUrl` may be,
    /// beside the default index.
    index_urls: Vec<String>,
    /// Whether the `kv` module may be turned on (it reaches nothing on the
    /// host, so it is allowed unless denied).
    deny_kv: bool,
}

/// A policy rule the operator gave that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("`{path}` cannot be used as an allowed directory: {reason}")]
    Dir { path: PathBuf, reason: String },
    #[error(transparent)]
    HttpHost(#[from] BadEntry),
    #[error("`{name}` is not a valid package name: {reason}")]
    PackageName { name: String, reason: String },
    #[error("`{url}` is not a usable index URL: {reason}")]
    IndexUrl { url: String, reason: String },
}

/// A capability the policy refuses. `rule()` names the rule on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "mount host path `{}` is not inside a directory this daemon allows mounting{}",
        path.display(), unresolved(reason)
    )]
    MountRoot {
        path: PathBuf,
        reason: Option<String>,
    },
    #[error("http entry `{entry}` is not within the hosts this daemon allows")]
    HttpHost { entry: String },
    #[error(
        "packages dir `{}` is not inside a packages directory this daemon allows{}",
        path.display(), unresolved(reason)
    )]
    PackagesDir {
        path: PathBuf,
        reason: Option<String>,
    },
    #[error("installing `{name}` is not allowed by this daemon")]
    Install { name: String },
    #[error("index URL `{url}` is not one this daemon allows")]
    IndexUrl { url: String },
    #[error("the `kv` capability is not allowed by this daemon")]
    Kv,
}

fn unresolved(reason: &Option<String>) -> String {
    match reason {
        Some(reason) => format!(" (it cannot be resolved: {reason})"),
        None => String::new(),
    }
}

impl Refusal {
    /// The rule's name in the error's `data.policy`.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::MountRoot { .. } => "mountRoots",
            Refusal::HttpHost { .. } => "httpHosts",
            Refusal::PackagesDir { .. } => "packagesDirs",
            Refusal::Install { .. } => "allowInstall",
            Refusal::IndexUrl { .. } => "indexUrls",
            Refusal::Kv => "kv",
        }
    }

    /// What was refused, as `(field, value)` for the error's `data`.
    pub fn subject(&self) -> Option<(&'static str, String)> {
        match self {
            Refusal::MountRoot { path, .. } | Refusal::PackagesDir { path, .. } => {
                Some(("path", path.display().to_string()))
            }
            Refusal::HttpHost { entry } => Some(("entry", entry.clone())),
            Refusal::Install { name } => Some(("name", name.clone())),
            Refusal::IndexUrl { url } => Some(("url", url.clone())),
            Refusal::Kv => None,
        }
    }
}

impl Policy {
    /// Everything the daemon's user could do is allowed (the default).
    pub fn open() -> Self {
        Policy::default()
    }

    /// Nothing that reaches the host is allowed until a rule allows it
    /// (`kv` and `deterministic` are allowed: they reach nothing).
    pub fn closed() -> Self {
        Policy {
            rules: Some(Rules::default()),
        }
    }

    /// Whether any rule was given.
    pub fn is_open(&self) -> bool {
        self.rules.is_none()
    }

    fn rules(&mut self) -> &mut Rules {
        self.rules.get_or_insert_with(Rules::default)
    }

    /// Allows mounting `dir` and anything beneath it (closes the policy).
    /// `dir` must be an existing directory; it is kept canonical.
    pub fn allow_mount_root(&mut self, dir: &Path) -> Result<&mut Self, PolicyError> {
        let dir = canonical_dir(dir)?;
        self.rules().mount_roots.push(dir);
        Ok(self)
    }

    /// Allows `http.allow` entries this entry covers (closes the policy).
    pub fn allow_http_host(&mut self, entry: &str) -> Result<&mut Self, PolicyError> {
        let entry = AllowEntry::parse(entry)?;
        self.rules().http_hosts.push(entry);
        Ok(self)
    }

    /// Allows `dir` and anything beneath it as a packages directory
    /// (closes the policy).
    pub fn allow_packages_dir(&mut self, dir: &Path) -> Result<&mut Self, PolicyError> {
        let dir = canonical_dir(dir)?;
        self.rules().packages_dirs.push(dir);
        Ok(self)
    }

    /// Allows `name` in `allowInstall` (closes the policy).
    pub fn allow_install(&mut self, name: &str) -> Result<&mut Self, PolicyError> {
        let normalized = goru_packages::package_name(name)
            .map_err(|err| PolicyError::PackageName {
                name: name.to_string(),
                reason: err.to_string(),
            })?
            .to_string();
        self.rules().install.insert(normalized);
        Ok(self)
    }

    /// Allows `url` as a packages `indexUrl` (closes the policy). The
    /// default index is allowed wherever installs are.
    pub fn allow_index_url(&mut self, url: &str) -> Result<&mut Self, PolicyError> {
        goru_packages::check_index_url(url).map_err(|err| PolicyError::IndexUrl {
            url: url.to_string(),
            reason: err.to_string(),
        })?;
        self.rules().index_urls.push(index_key(url).to_string());
        Ok(self)
    }

    /// Refuses the `kv` capability (closes the policy).
    pub fn deny_kv(&mut self) -> &mut Self {
        self.rules().deny_kv = true;
        self
    }

    /// Checks every capability a client asked for against the rules. Host
    /// paths are replaced by their canonical form, the one that was
    /// checked, so the engine opens what was allowed and not a link
    /// re-pointed since. An open policy changes nothing.
    ///
    /// The `http` entries must already be valid (`HttpCapability::validate`).
    pub fn check(&self, capabilities: &mut Capabilities) -> Result<(), Refusal> {
        let Some(rules) = &self.rules else {
            return Ok(());
        };
        if capabilities.kv.is_some() && rules.deny_kv {
            return Err(Refusal::Kv);
        }
        for mount in &mut capabilities.mounts {
            mount.host =
                inside(&mount.host, &rules.mount_roots).map_err(|reason| Refusal::MountRoot {
                    path: mount.host.clone(),
                    reason,
                })?;
        }
        if let Some(http) = &capabilities.http {
            for text in &http.allow {
                let covered = AllowEntry::parse(text)
                    .is_ok_and(|entry| rules.http_hosts.iter().any(|own| own.covers(&entry)));
                if !covered {
                    return Err(Refusal::HttpHost {
                        entry: text.clone(),
                    });
                }
            }
        }
        if let Some(packages) = &mut capabilities.packages {
            packages.dir = inside(&packages.dir, &rules.packages_dirs).map_err(|reason| {
                Refusal::PackagesDir {
                    path: packages.dir.clone(),
                    reason,
                }
            })?;
            for name in &packages.allow_install {
                // A name that does not parse is refused here too: it can
                // be in no list the operator gave.
                let allowed = goru_packages::package_name(name)
                    .is_ok_and(|n| rules.install.contains(&n.to_string()));
                if !allowed {
                    return Err(Refusal::Install { name: name.clone() });
                }
            }
            if let Some(url) = &packages.index_url
                && !rules.index_urls.iter().any(|own| own == index_key(url))
            {
                return Err(Refusal::IndexUrl { url: url.clone() });
            }
        }
        Ok(())
    }
}

/// The canonical form of an existing directory the operator named.
fn canonical_dir(dir: &Path) -> Result<PathBuf, PolicyError> {
    let bad = |reason: String| PolicyError::Dir {
        path: dir.to_path_buf(),
        reason,
    };
    let canonical = std::fs::canonicalize(dir).map_err(|err| bad(err.to_string()))?;
    if !canonical.is_dir() {
        return Err(bad("not a directory".into()));
    }
    Ok(canonical)
}

/// `path` resolved (every `..` and link followed, as opening it would),
/// when that is one of `roots` or beneath one. `Err(None)`: outside them;
/// `Err(Some(reason))`: it cannot be resolved (it does not exist, say).
fn inside(path: &Path, roots: &[PathBuf]) -> Result<PathBuf, Option<String>> {
    let resolved = std::fs::canonicalize(path).map_err(|err| Some(err.to_string()))?;
    // `Path::starts_with` compares whole components: `/data2` is not in `/data`.
    if roots.iter().any(|root| resolved.starts_with(root)) {
        Ok(resolved)
    } else {
        Err(None)
    }
}

/// An index URL as compared: without one trailing `/`.
fn index_key(url: &str) -> &str {
    let url = url.trim();
    url.strip_suffix('/').unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use goru_runtimes::{HttpCapability, KvLimits, Mount, MountMode, PackagesCapability};

    fn mount(host: &Path) -> Capabilities {
        Capabilities {
            mounts: vec![Mount::new("/data", host.to_path_buf(), MountMode::Ro)],
            ..Capabilities::none()
        }
    }

    fn http(entries: &[&str]) -> Capabilities {
        Capabilities {
            http: Some(HttpCapability::allowing(entries.iter().copied())),
            ..Capabilities::none()
        }
    }

    #[test]
    fn an_open_policy_allows_everything_and_changes_nothing() {
        let policy = Policy::open();
        let dir = tempfile::tempdir().unwrap();
        let mut capabilities = Capabilities {
            kv: Some(KvLimits::default()),
            ..mount(&dir.path().join("..").join(dir.path().file_name().unwrap()))
        };
        let before = capabilities.clone();
        policy.check(&mut capabilities).unwrap();
        assert_eq!(capabilities, before);
        policy
            .check(&mut http(&["*.example.com", "10.0.0.1"]))
            .unwrap();
    }

    #[test]
    fn a_closed_policy_refuses_every_capability_that_reaches_the_host_and_allows_the_rest() {
        let policy = Policy::closed();
        let dir = tempfile::tempdir().unwrap();
        let refused =
            |mut capabilities: Capabilities| policy.check(&mut capabilities).unwrap_err().rule();
        assert_eq!(refused(mount(dir.path())), "mountRoots");
        assert_eq!(refused(http(&["example.com"])), "httpHosts");
        let packages = Capabilities {
            packages: Some(PackagesCapability::new(dir.path())),
            ..Capabilities::none()
        };
        assert_eq!(refused(packages), "packagesDirs");
        let mut harmless = Capabilities {
            kv: Some(KvLimits::default()),
            deterministic: Some(Default::default()),
            ..Capabilities::none()
        };
        policy.check(&mut harmless).unwrap();
        let mut denied = Policy::closed();
        denied.deny_kv();
        assert_eq!(
            denied
                .check(&mut Capabilities {
                    kv: Some(KvLimits::default()),
                    ..Capabilities::none()
                })
                .unwrap_err(),
            Refusal::Kv
        );
    }

    #[test]
    fn mounts_must_resolve_inside_an_allowed_root() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("root");
        let beside = top.path().join("root2");
        let outside = top.path().join("outside");
        for dir in [&root, &beside, &outside] {
            std::fs::create_dir(dir).unwrap();
        }
        std::fs::create_dir(root.join("inner")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
        std::os::unix::fs::symlink(root.join("inner"), outside.join("back-in")).unwrap();
        let mut policy = Policy::closed();
        policy.allow_mount_root(&root).unwrap();
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap();
        // (host path asked, Some(what the engine gets) or None: refused)
        let rows: Vec<(PathBuf, Option<PathBuf>)> = vec![
            (root.clone(), Some(canonical(&root))),
            (root.join("inner"), Some(canonical(&root.join("inner")))),
            (root.join("inner/.."), Some(canonical(&root))),
            (root.join(".."), None),
            (root.join("inner/../../outside"), None),
            (beside.clone(), None),
            (root.join("escape"), None),
            (
                outside.join("back-in"),
                Some(canonical(&root.join("inner"))),
            ),
            (root.join("missing"), None),
            (PathBuf::from("/"), None),
        ];
        for (asked, expected) in rows {
            let mut capabilities = mount(&asked);
            match (policy.check(&mut capabilities), expected) {
                (Ok(()), Some(expected)) => {
                    assert_eq!(capabilities.mounts[0].host, expected, "{asked:?}")
                }
                (Err(refusal), None) => {
                    assert_eq!(refusal.rule(), "mountRoots", "{asked:?}");
                    assert_eq!(
                        refusal.subject(),
                        Some(("path", asked.display().to_string()))
                    );
                }
                (result, expected) => panic!("{asked:?}: {result:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn every_http_entry_must_be_covered_by_an_allowed_host() {
        let mut policy = Policy::closed();
        policy
            .allow_http_host("*.example.com")
            .unwrap()
            .allow_http_host("http://127.0.0.1:8080")
            .unwrap();
        // (entries asked, the refused one or None)
        let rows: &[(&[&str], Option<&str>)] = &[
            (&["api.example.com"], None),
            (&["https://api.example.com", "http://127.0.0.1:8080"], None),
            (&["api.example.com", "example.com"], Some("example.com")),
            (&["127.0.0.1:8080"], Some("127.0.0.1:8080")),
            (&["http://127.0.0.1:8081"], Some("http://127.0.0.1:8081")),
            (&["10.0.0.1"], Some("10.0.0.1")),
            (&["api.example.com:8443"], Some("api.example.com:8443")),
        ];
        for (entries, refused) in rows {
            let result = policy.check(&mut http(entries));
            match refused {
                None => result.unwrap(),
                Some(entry) => assert_eq!(
                    result.unwrap_err(),
                    Refusal::HttpHost {
                        entry: entry.to_string()
                    },
                    "{entries:?}"
                ),
            }
        }
    }

    #[test]
    fn packages_need_an_allowed_dir_names_and_index() {
        let top = tempfile::tempdir().unwrap();
        let allowed = top.path().join("pkgs");
        let other = top.path().join("other");
        std::fs::create_dir(&allowed).unwrap();
        std::fs::create_dir(&other).unwrap();
        let mut policy = Policy::closed();
        policy
            .allow_packages_dir(&allowed)
            .unwrap()
            .allow_install("Attrs")
            .unwrap()
            .allow_index_url("https://pypi.example.com/simple/")
            .unwrap();
        let check = |dir: &Path, names: &[&str], index: Option<&str>| {
            let mut capabilities = Capabilities {
                packages: Some(PackagesCapability {
                    dir: dir.to_path_buf(),
                    allow_install: names.iter().map(|n| n.to_string()).collect(),
                    index_url: index.map(str::to_string),
                }),
                ..Capabilities::none()
            };
            policy.check(&mut capabilities).map_err(|r| r.rule())
        };
        assert_eq!(check(&allowed, &[], None), Ok(()));
        assert_eq!(check(&allowed, &["attrs", "ATTRS"], None), Ok(()));
        assert_eq!(
            check(
                &allowed,
                &["attrs"],
                Some("https://pypi.example.com/simple")
            ),
            Ok(())
        );
        assert_eq!(check(&other, &[], None), Err("packagesDirs"));
        assert_eq!(check(&allowed, &["requests"], None), Err("allowInstall"));
        assert_eq!(check(&allowed, &["not a name!"], None), Err("allowInstall"));
        assert_eq!(
            check(&allowed, &["attrs"], Some("http://127.0.0.1:9/simple")),
            Err("indexUrls")
        );
    }

    #[test]
    fn bad_rules_are_refused_when_given() {
        let mut policy = Policy::open();
        assert!(matches!(
            policy.allow_mount_root(Path::new("/does/not/exist")),
            Err(PolicyError::Dir { .. })
        ));
        assert!(matches!(
            policy.allow_http_host("ftp://x"),
            Err(PolicyError::HttpHost(_))
        ));
        assert!(matches!(
            policy.allow_install("not a name!"),
            Err(PolicyError::PackageName { .. })
        ));
        assert!(matches!(
            policy.allow_index_url("file:///etc"),
            Err(PolicyError::IndexUrl { .. })
        ));
    }
}
