//! Resolution: the newest version of every package that fits every
//! constraint on it, for the guest's environment.
//!
//! Requirements are taken breadth first. When a later requirement rules
//! out a version already chosen, the constraint is remembered and
//! resolution starts again (pages and wheels stay cached), so the result
//! never contradicts a requirement. It does not search through older
//! versions of one package to satisfy another: a real conflict is reported
//! with who asked for what.

use crate::index::{IndexClient, IndexFile};
use crate::progress::{Event, Progress};
use crate::wheel::{Wheel, WheelName};
use crate::{Error, Limits, Request, environment};
use pep440_rs::{Operator, Version, VersionSpecifiers};
use pep508_rs::{ExtraName, PackageName, VersionOrUrl};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::str::FromStr;
use std::sync::Arc;

/// Where a requirement came from when the user asked for it.
const REQUESTED: &str = "the request";

/// How many times resolution may start again with what it learnt.
const MAX_ATTEMPTS: usize = 50;

/// One package of the result.
pub(crate) struct Resolved {
    pub name: PackageName,
    pub version: Version,
    pub wheel: Arc<Wheel>,
}

#[derive(Clone)]
struct Constraint {
    specifiers: VersionSpecifiers,
    from: String,
}

struct Pending {
    name: PackageName,
    extras: Vec<ExtraName>,
    specifiers: VersionSpecifiers,
    from: String,
}

struct Chosen {
    version: Version,
    wheel: Arc<Wheel>,
    extras: BTreeSet<ExtraName>,
}

enum Attempt {
    Done(Vec<Resolved>),
    Retry(PackageName, Constraint),
}

pub(crate) struct Resolver<'a> {
    client: &'a IndexClient,
    limits: &'a Limits,
    progress: &'a Arc<dyn Progress>,
    pages: HashMap<PackageName, Arc<Vec<IndexFile>>>,
    wheels: HashMap<String, Arc<Wheel>>,
    /// Bytes of every wheel downloaded so far.
    downloaded: u64,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(
        client: &'a IndexClient,
        limits: &'a Limits,
        progress: &'a Arc<dyn Progress>,
    ) -> Self {
        Resolver {
            client,
            limits,
            progress,
            pages: HashMap::new(),
            wheels: HashMap::new(),
            downloaded: 0,
        }
    }

    pub(crate) async fn resolve(&mut self, roots: &[Request]) -> Result<Vec<Resolved>, Error> {
        let mut learned: BTreeMap<PackageName, Vec<Constraint>> = BTreeMap::new();
        for _ in 0..MAX_ATTEMPTS {
            match self.attempt(roots, &learned).await? {
                Attempt::Done(resolved) => return Ok(resolved),
                Attempt::Retry(name, constraint) => {
                    learned.entry(name).or_default().push(constraint)
                }
            }
        }
        Err(Error::NoMatchingVersion {
            name: roots
                .iter()
                .map(|r| r.name.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            reason: format!("the requirements did not settle after {MAX_ATTEMPTS} rounds"),
        })
    }

    async fn attempt(
        &mut self,
        roots: &[Request],
        learned: &BTreeMap<PackageName, Vec<Constraint>>,
    ) -> Result<Attempt, Error> {
        let mut constraints = learned.clone();
        let mut chosen: BTreeMap<PackageName, Chosen> = BTreeMap::new();
        let mut queue: VecDeque<Pending> = roots
            .iter()
            .map(|root| Pending {
                name: root.name.clone(),
                extras: root.extras.clone(),
                specifiers: root.specifiers.clone(),
                from: REQUESTED.to_string(),
            })
            .collect();
        while let Some(pending) = queue.pop_front() {
            let constraint = Constraint {
                specifiers: pending.specifiers.clone(),
                from: pending.from.clone(),
            };
            constraints
                .entry(pending.name.clone())
                .or_default()
                .push(constraint.clone());
            if let Some(existing) = chosen.get_mut(&pending.name) {
                if !pending.specifiers.contains(&existing.version) {
                    return Ok(Attempt::Retry(pending.name, constraint));
                }
                let before = existing.extras.len();
                existing.extras.extend(pending.extras.iter().cloned());
                if existing.extras.len() != before {
                    let from = format!("{} {}", pending.name, existing.version);
                    queue.extend(dependencies(&existing.wheel, &existing.extras, &from)?);
                }
                continue;
            }
            if chosen.len() >= self.limits.max_packages {
                return Err(Error::TooManyPackages {
                    limit: self.limits.max_packages,
                });
            }
            let (version, wheel) = self
                .choose(&pending.name, &constraints[&pending.name])
                .await?;
            let extras: BTreeSet<ExtraName> = pending.extras.iter().cloned().collect();
            let from = format!("{} {}", pending.name, version);
            queue.extend(dependencies(&wheel, &extras, &from)?);
            chosen.insert(
                pending.name,
                Chosen {
                    version,
                    wheel,
                    extras,
                },
            );
        }
        Ok(Attempt::Done(
            chosen
                .into_iter()
                .map(|(name, chosen)| Resolved {
                    name,
                    version: chosen.version,
                    wheel: chosen.wheel,
                })
                .collect(),
        ))
    }

    async fn page(&mut self, name: &PackageName) -> Result<Arc<Vec<IndexFile>>, Error> {
        if let Some(files) = self.pages.get(name) {
            return Ok(files.clone());
        }
        self.progress.event(Event::Resolving {
            name: name.as_ref(),
        });
        let files = Arc::new(self.client.project(name).await?);
        self.pages.insert(name.clone(), files.clone());
        Ok(files)
    }

    /// The newest version of `name` that fits `constraints`, with a wheel
    /// for the guest: downloaded, checked and opened.
    async fn choose(
        &mut self,
        name: &PackageName,
        constraints: &[Constraint],
    ) -> Result<(Version, Arc<Wheel>), Error> {
        let files = self.page(name).await?;
        let versions = group_by_version(name, &files);
        let allow_pre = constraints
            .iter()
            .any(|c| c.specifiers.iter().any(|s| s.any_prerelease()));
        let pinned = constraints.iter().any(|c| {
            c.specifiers
                .iter()
                .any(|s| matches!(s.operator(), Operator::Equal | Operator::ExactEqual))
        });
        let fits = |version: &Version| constraints.iter().all(|c| c.specifiers.contains(version));
        let mut first_impure: Option<(&Version, &Files)> = None;
        let mut python_mismatch: Vec<String> = Vec::new();
        let mut yanked_only = false;
        // Final releases first; pre-releases only when asked for or when
        // nothing else fits (PEP 440).
        let passes: &[Option<bool>] = if allow_pre {
            &[None]
        } else {
            &[Some(false), Some(true)]
        };
        for pass in passes {
            for (version, group) in versions.iter().rev() {
                if pass.is_some_and(|pre| version.any_prerelease() != pre) {
                    continue;
                }
                if !fits(version) {
                    continue;
                }
                let usable: Vec<&IndexFile> = group
                    .guest
                    .iter()
                    .filter(|file| !file.yanked || pinned)
                    .collect();
                if usable.is_empty() {
                    if group.guest.is_empty() {
                        first_impure.get_or_insert((version, group));
                    } else {
                        yanked_only = true;
                    }
                    continue;
                }
                let Some(file) = usable.into_iter().find(|file| {
                    python_fits(file.requires_python.as_deref()).unwrap_or_else(|| {
                        python_mismatch.push(format!("{version}"));
                        false
                    })
                }) else {
                    continue;
                };
                let wheel = self.wheel(file).await?;
                if python_fits(wheel.metadata.requires_python.as_deref()) == Some(false) {
                    python_mismatch.push(format!("{version}"));
                    continue;
                }
                return Ok((version.clone(), wheel));
            }
        }
        let asked = describe_constraints(constraints);
        if let Some((version, group)) = first_impure {
            let mut needed_by: Vec<&str> = constraints
                .iter()
                .map(|c| c.from.as_str())
                .filter(|from| *from != REQUESTED)
                .collect();
            needed_by.dedup();
            return Err(Error::NotPure {
                name: name.to_string(),
                version: version.to_string(),
                needed_by: if needed_by.is_empty() {
                    String::new()
                } else {
                    format!(" (needed by {})", needed_by.join(", "))
                },
                found: group.describe_impure(),
            });
        }
        let reason = if !python_mismatch.is_empty() {
            python_mismatch.dedup();
            format!(
                "the versions that match {asked} ({}) require a Python other than the guest's {}",
                python_mismatch.join(", "),
                environment::PYTHON_FULL_VERSION
            )
        } else if yanked_only {
            format!("the only versions that match {asked} are yanked (pin one with `==` to use it)")
        } else if versions.is_empty() {
            "the index lists no files for it".to_string()
        } else {
            let newest: Vec<String> = versions
                .keys()
                .rev()
                .take(5)
                .map(ToString::to_string)
                .collect();
            format!(
                "none of its versions matches {asked} (newest: {})",
                newest.join(", ")
            )
        };
        Err(Error::NoMatchingVersion {
            name: name.to_string(),
            reason,
        })
    }

    async fn wheel(&mut self, file: &IndexFile) -> Result<Arc<Wheel>, Error> {
        if let Some(wheel) = self.wheels.get(&file.filename) {
            return Ok(wheel.clone());
        }
        let bytes = self.client.download(file, self.progress).await?;
        self.downloaded += bytes.len() as u64;
        if self.downloaded > self.limits.max_total_download_bytes {
            return Err(Error::TooLarge {
                what: "the downloads of this install together".into(),
                limit: format!("{} bytes", self.limits.max_total_download_bytes),
            });
        }
        let expected = WheelName::parse(&file.filename).ok_or_else(|| Error::InvalidWheel {
            file: file.filename.clone(),
            reason: "not a wheel file name".into(),
        })?;
        let wheel = Arc::new(Wheel::open(&file.filename, bytes, &expected, self.limits)?);
        self.wheels.insert(file.filename.clone(), wheel.clone());
        Ok(wheel)
    }
}

/// A project's files of one version.
#[derive(Default)]
struct Files {
    /// Wheels the guest can use.
    guest: Vec<IndexFile>,
    /// Every other file's name (compiled wheels, source archives).
    other: Vec<String>,
}

impl Files {
    fn describe_impure(&self) -> String {
        let wheels: Vec<&String> = self.other.iter().filter(|f| f.ends_with(".whl")).collect();
        let sources = self.other.len() - wheels.len();
        let mut parts = Vec::new();
        if let Some(example) = wheels.first() {
            parts.push(format!(
                "{} wheel{} built for specific platforms, such as {example}",
                wheels.len(),
                if wheels.len() == 1 { "" } else { "s" }
            ));
        }
        if sources > 0 {
            parts.push(if sources == 1 {
                "a source archive".to_string()
            } else {
                format!("{sources} source archives")
            });
        }
        if parts.is_empty() {
            "no usable file".to_string()
        } else {
            parts.join(" and ")
        }
    }
}

fn group_by_version(name: &PackageName, files: &[IndexFile]) -> BTreeMap<Version, Files> {
    let mut versions: BTreeMap<Version, Files> = BTreeMap::new();
    for file in files {
        if let Some(wheel) = WheelName::parse(&file.filename) {
            if &wheel.name != name {
                continue;
            }
            let group = versions.entry(wheel.version.clone()).or_default();
            if wheel.fits_guest() {
                group.guest.push(file.clone());
            } else {
                group.other.push(file.filename.clone());
            }
        } else if let Some(version) = source_version(name, &file.filename) {
            versions
                .entry(version)
                .or_default()
                .other
                .push(file.filename.clone());
        }
    }
    versions
}

/// The version in a source archive's name (`name-1.2.tar.gz`).
fn source_version(name: &PackageName, filename: &str) -> Option<Version> {
    let stem = [".tar.gz", ".zip", ".tar.bz2", ".tgz"]
        .iter()
        .find_map(|ext| filename.strip_suffix(ext))?;
    let (project, version) = stem.rsplit_once('-')?;
    (PackageName::new(project.to_string()).ok()? == *name).then(|| version.parse().ok())?
}

/// `Some(true)` when `requires_python` admits the guest (or is absent),
/// `Some(false)` when it does not, `None` when it cannot be parsed (the
/// file is then passed over).
fn python_fits(requires_python: Option<&str>) -> Option<bool> {
    let Some(spec) = requires_python else {
        return Some(true);
    };
    VersionSpecifiers::from_str(spec)
        .ok()
        .map(|specifiers| specifiers.contains(environment::python_version()))
}

/// The requirements of `wheel` that apply to the guest with `extras`.
fn dependencies(
    wheel: &Wheel,
    extras: &BTreeSet<ExtraName>,
    from: &str,
) -> Result<Vec<Pending>, Error> {
    let extras: Vec<ExtraName> = extras.iter().cloned().collect();
    let mut pending = Vec::new();
    for line in &wheel.metadata.requires_dist {
        let requirement = crate::request::requirement(line).map_err(|e| Error::InvalidWheel {
            file: wheel.filename.clone(),
            reason: format!("unreadable Requires-Dist `{line}`: {e}"),
        })?;
        if !requirement.evaluate_markers(environment::guest_markers(), &extras) {
            continue;
        }
        let specifiers = match requirement.version_or_url {
            None => VersionSpecifiers::empty(),
            Some(VersionOrUrl::VersionSpecifier(specifiers)) => specifiers,
            Some(VersionOrUrl::Url(_)) => {
                return Err(Error::InvalidRequirement {
                    input: line.clone(),
                    reason: format!(
                        "{from} depends on a direct URL; goru installs only from its package index"
                    ),
                });
            }
        };
        pending.push(Pending {
            name: requirement.name,
            extras: requirement.extras,
            specifiers,
            from: from.to_string(),
        });
    }
    Ok(pending)
}

fn describe_constraints(constraints: &[Constraint]) -> String {
    let mut parts: Vec<String> = constraints
        .iter()
        .map(|c| {
            let spec = if c.specifiers.is_empty() {
                "any version".to_string()
            } else {
                format!("`{}`", c.specifiers)
            };
            format!("{spec} (from {})", c.from)
        })
        .collect();
    parts.dedup();
    parts.join(" and ")
}
