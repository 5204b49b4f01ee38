//! Wheels: their file names, their metadata, and unpacking them without
//! letting a single entry leave the directory it is unpacked into.

use crate::nofollow::write_new;
use crate::reserved::{RESERVED_PREFIX, is_reserved};
use crate::{Error, Limits, environment};
use base64::Engine as _;
use pep440_rs::Version;
use pep508_rs::PackageName;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::os::fd::BorrowedFd;
use std::path::Path;
use zip::ZipArchive;

/// `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WheelName {
    pub name: PackageName,
    pub version: Version,
    pub python: Vec<String>,
    pub abi: Vec<String>,
    pub platform: Vec<String>,
}

impl WheelName {
    pub(crate) fn parse(filename: &str) -> Option<WheelName> {
        let stem = filename.strip_suffix(".whl")?;
        let parts: Vec<&str> = stem.split('-').collect();
        if !(parts.len() == 5 || parts.len() == 6) {
            return None;
        }
        let tags = |i: usize| -> Vec<String> {
            parts[parts.len() - i]
                .split('.')
                .map(str::to_ascii_lowercase)
                .collect()
        };
        Some(WheelName {
            name: PackageName::new(parts[0].to_string()).ok()?,
            version: parts[1].parse().ok()?,
            python: tags(3),
            abi: tags(2),
            platform: tags(1),
        })
    }

    /// Tagged for any ABI and platform.
    pub(crate) fn is_pure(&self) -> bool {
        self.abi.iter().any(|t| t == "none") && self.platform.iter().any(|t| t == "any")
    }

    /// Pure, and for Python 3 up to the guest's version (`py3`, `py2.py3`,
    /// `py38`, ..., `py314`).
    pub(crate) fn fits_guest(&self) -> bool {
        self.is_pure()
            && self.python.iter().any(|tag| {
                tag == "py3"
                    || tag
                        .strip_prefix("py3")
                        .and_then(|minor| minor.parse::<u64>().ok())
                        .is_some_and(|minor| minor <= environment::PYTHON3_MINOR)
            })
    }
}

/// What a wheel's METADATA says about it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Metadata {
    pub name: String,
    pub version: String,
    pub requires_dist: Vec<String>,
    pub requires_python: Option<String>,
}

/// Headers of a METADATA file (RFC 822 style; the body after the first
/// empty line is the description and is ignored).
pub(crate) fn parse_metadata(text: &str) -> Metadata {
    let mut metadata = Metadata::default();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            headers.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    for (key, value) in headers {
        match key.as_str() {
            "name" => metadata.name = value,
            "version" => metadata.version = value,
            "requires-dist" => metadata.requires_dist.push(value),
            "requires-python" if !value.is_empty() => metadata.requires_python = Some(value),
            _ => {}
        }
    }
    metadata
}

/// A downloaded wheel whose entries and metadata have been checked.
pub(crate) struct Wheel {
    pub filename: String,
    pub metadata: Metadata,
    /// The `.dist-info` directory's name inside the archive.
    pub dist_info: String,
    bytes: Vec<u8>,
}

/// One file as installed: where, its hash in RECORD's form, its size.
#[derive(Clone, Debug)]
pub(crate) struct UnpackedFile {
    pub path: String,
    pub hash: String,
    pub size: u64,
}

const MAX_METADATA_BYTES: u64 = 16 << 20;

impl Wheel {
    /// Checks every entry's path and type, finds the `.dist-info`, reads
    /// METADATA and WHEEL, and checks they describe `expected`.
    pub(crate) fn open(
        filename: &str,
        bytes: Vec<u8>,
        expected: &WheelName,
        limits: &Limits,
    ) -> Result<Wheel, Error> {
        let invalid = |reason: String| Error::InvalidWheel {
            file: filename.to_string(),
            reason,
        };
        let mut archive = ZipArchive::new(Cursor::new(bytes.as_slice()))
            .map_err(|e| invalid(format!("not a zip archive: {e}")))?;
        if archive.len() > limits.max_archive_entries {
            return Err(Error::TooLarge {
                what: format!("{filename} ({} entries)", archive.len()),
                limit: format!("{} entries", limits.max_archive_entries),
            });
        }
        let mut dist_infos = std::collections::BTreeSet::new();
        for index in 0..archive.len() {
            let entry = archive
                .by_index_raw(index)
                .map_err(|e| invalid(format!("entry {index}: {e}")))?;
            let name = entry
                .name()
                .map_err(|e| invalid(format!("entry {index} has an unreadable name: {e}")))?
                .into_owned();
            check_entry_path(filename, &name)?;
            check_entry_type(filename, &name, entry.unix_mode(), entry.is_symlink())?;
            if is_native_code(&name) {
                return Err(Error::NotPure {
                    name: expected.name.to_string(),
                    version: expected.version.to_string(),
                    needed_by: String::new(),
                    found: format!("the compiled file `{name}` inside {filename}"),
                });
            }
            let top = name.split('/').next().unwrap_or_default();
            if top.ends_with(".dist-info") && name.contains('/') {
                dist_infos.insert(top.to_string());
            }
        }
        let dist_info = match dist_infos.len() {
            1 => dist_infos.into_iter().next().unwrap_or_default(),
            0 => return Err(invalid("it has no .dist-info directory".into())),
            _ => return Err(invalid("it has more than one .dist-info directory".into())),
        };
        let describes_expected = dist_info
            .strip_suffix(".dist-info")
            .and_then(|stem| stem.rsplit_once('-'))
            .is_some_and(|(name, version)| {
                PackageName::new(name.to_string()).ok().as_ref() == Some(&expected.name)
                    && version.parse::<Version>().ok().as_ref() == Some(&expected.version)
            });
        if !describes_expected {
            return Err(invalid(format!(
                "its {dist_info} does not match the file name"
            )));
        }
        // goru's own names (the lock, staging directories) are not a
        // package's to install: such a file could stand in for them.
        let data_dir = format!("{}.data", dist_info.trim_end_matches(".dist-info"));
        for index in 0..archive.len() {
            let entry = archive
                .by_index_raw(index)
                .map_err(|e| invalid(format!("entry {index}: {e}")))?;
            let name = entry.name().unwrap_or_default();
            if install_path(&name, &data_dir).is_some_and(|path| is_reserved(&path)) {
                return Err(Error::UnsafeArchive {
                    file: filename.to_string(),
                    reason: format!(
                        "its entry `{}` would install a name reserved for goru ({}*)",
                        name.escape_debug(),
                        RESERVED_PREFIX
                    ),
                });
            }
        }
        let wheel_text = read_text(&mut archive, &format!("{dist_info}/WHEEL"), filename)?;
        let wheel_fields: BTreeMap<String, String> = wheel_text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        match wheel_fields.get("wheel-version").map(String::as_str) {
            Some(version) if version.split('.').next() == Some("1") => {}
            other => {
                return Err(invalid(format!(
                    "unsupported Wheel-Version {}",
                    other.unwrap_or("(missing)")
                )));
            }
        }
        if !wheel_fields
            .get("root-is-purelib")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(Error::NotPure {
                name: expected.name.to_string(),
                version: expected.version.to_string(),
                needed_by: String::new(),
                found: format!("{filename}, which says Root-Is-Purelib: false"),
            });
        }
        let metadata = parse_metadata(&read_text(
            &mut archive,
            &format!("{dist_info}/METADATA"),
            filename,
        )?);
        let same_name =
            PackageName::new(metadata.name.clone()).ok().as_ref() == Some(&expected.name);
        let same_version =
            metadata.version.parse::<Version>().ok().as_ref() == Some(&expected.version);
        if !same_name || !same_version {
            return Err(invalid(format!(
                "its METADATA names {} {}, not the file's {} {}",
                metadata.name, metadata.version, expected.name, expected.version
            )));
        }
        drop(archive);
        Ok(Wheel {
            filename: filename.to_string(),
            metadata,
            dist_info,
            bytes,
        })
    }

    /// Unpacks into `into` (an empty staging directory), checking every
    /// file against RECORD. `purelib`/`platlib` under `.data` go to the
    /// top; scripts, headers and data files are not installed. RECORD
    /// itself is left out: the caller writes one for what was installed.
    pub(crate) fn unpack(
        &self,
        into: BorrowedFd<'_>,
        shown: &Path,
        limits: &Limits,
    ) -> Result<Vec<UnpackedFile>, Error> {
        let invalid = |reason: String| Error::InvalidWheel {
            file: self.filename.clone(),
            reason,
        };
        let mut archive = ZipArchive::new(Cursor::new(self.bytes.as_slice()))
            .map_err(|e| invalid(format!("not a zip archive: {e}")))?;
        let record_path = format!("{}/RECORD", self.dist_info);
        let record_text = read_text(&mut archive, &record_path, &self.filename)?;
        let mut record = parse_record(&record_text).map_err(invalid)?;
        let data_dir = format!(
            "{}.data",
            self.dist_info
                .strip_suffix(".dist-info")
                .unwrap_or_default()
        );
        let mut unpacked = Vec::new();
        let mut total: u64 = 0;
        for index in 0..archive.len() {
            let mut entry = archive
                .by_index(index)
                .map_err(|e| invalid(format!("entry {index}: {e}")))?;
            let name = entry
                .name()
                .map_err(|e| invalid(format!("entry {index} has an unreadable name: {e}")))?
                .into_owned();
            if entry.is_dir() {
                continue;
            }
            let listed = record.remove(&name);
            if name == record_path
                || name == format!("{record_path}.jws")
                || name == format!("{record_path}.p7s")
            {
                continue;
            }
            let Some(listed) = listed else {
                return Err(invalid(format!("`{name}` is not listed in RECORD")));
            };
            let mut content = Vec::new();
            let remaining = limits.max_unpacked_bytes.saturating_sub(total);
            (&mut entry)
                .take(remaining.saturating_add(1))
                .read_to_end(&mut content)
                .map_err(|e| invalid(format!("`{name}`: {e}")))?;
            total += content.len() as u64;
            if total > limits.max_unpacked_bytes {
                return Err(Error::TooLarge {
                    what: format!("{} unpacked", self.filename),
                    limit: format!("{} bytes", limits.max_unpacked_bytes),
                });
            }
            listed
                .check(&content)
                .map_err(|reason| invalid(format!("`{name}` {reason}")))?;
            let Some(destination) = install_path(&name, &data_dir) else {
                continue;
            };
            write_new(into, shown, &destination, &content).map_err(|e| match e {
                Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
                    invalid(format!("two entries unpack to `{destination}`"))
                }
                e => e,
            })?;
            unpacked.push(UnpackedFile {
                hash: record_hash(&content),
                size: content.len() as u64,
                path: destination,
            });
        }
        if let Some(missing) = record.keys().find(|path| **path != record_path) {
            return Err(invalid(format!(
                "RECORD lists `{missing}`, which is not in the archive"
            )));
        }
        Ok(unpacked)
    }
}

/// Where the archive entry `name` is installed, relative to the package
/// directory: `purelib`/`platlib` under `.data` go to the top, the rest of
/// `.data` (scripts, headers, data) nowhere.
fn install_path(name: &str, data_dir: &str) -> Option<String> {
    match name.strip_prefix(&format!("{data_dir}/")) {
        Some(rest) => match rest.split_once('/') {
            Some(("purelib" | "platlib", inner)) => Some(inner.to_string()),
            _ => None,
        },
        None => Some(name.to_string()),
    }
}

/// `sha256=<urlsafe base64 without padding>`, as RECORD writes hashes.
pub(crate) fn record_hash(content: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(content))
    )
}

/// A RECORD line's claims about one file.
pub(crate) struct Listed {
    hash: Option<String>,
    size: Option<u64>,
}

impl Listed {
    fn check(&self, content: &[u8]) -> Result<(), String> {
        let Some(hash) = &self.hash else {
            return Err("has no hash in RECORD".into());
        };
        let Some((algorithm, expected)) = hash.split_once('=') else {
            return Err(format!("has a malformed RECORD hash `{hash}`"));
        };
        let actual = match algorithm {
            "sha256" => Sha256::digest(content).to_vec(),
            "sha384" => Sha384::digest(content).to_vec(),
            "sha512" => Sha512::digest(content).to_vec(),
            other => return Err(format!("uses the unsupported RECORD hash `{other}`")),
        };
        let actual = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(actual);
        if actual != expected.trim_end_matches('=') {
            return Err("does not match its hash in RECORD".into());
        }
        if self.size.is_some_and(|size| size != content.len() as u64) {
            return Err("does not match its size in RECORD".into());
        }
        Ok(())
    }
}

/// RECORD is CSV: `path,hash,size`, with quoting when a path has a comma.
pub(crate) fn parse_record(text: &str) -> Result<BTreeMap<String, Listed>, String> {
    let mut record = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields = csv_fields(line);
        let (Some(path), Some(hash), Some(size)) = (fields.first(), fields.get(1), fields.get(2))
        else {
            return Err(format!("malformed RECORD line `{line}`"));
        };
        let listed = Listed {
            hash: (!hash.is_empty()).then(|| hash.clone()),
            size: match size.as_str() {
                "" => None,
                n => Some(
                    n.parse()
                        .map_err(|_| format!("malformed size in RECORD line `{line}`"))?,
                ),
            },
        };
        if record.insert(path.clone(), listed).is_some() {
            return Err(format!("RECORD lists `{path}` twice"));
        }
    }
    Ok(record)
}

/// The path field of a RECORD line.
pub(crate) fn record_path(line: &str) -> Option<String> {
    csv_fields(line)
        .into_iter()
        .next()
        .filter(|p| !p.is_empty())
}

fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Reads a (small) text file of the archive.
fn read_text(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    path: &str,
    filename: &str,
) -> Result<String, Error> {
    let invalid = |reason: String| Error::InvalidWheel {
        file: filename.to_string(),
        reason,
    };
    let entry = archive
        .by_name(path)
        .map_err(|_| invalid(format!("it has no {path}")))?;
    let mut text = String::new();
    entry
        .take(MAX_METADATA_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| invalid(format!("{path}: {e}")))?;
    Ok(text)
}

/// An entry path must stay inside the directory it is unpacked into:
/// relative, `/`-separated, no empty, `.` or `..` component, no backslash,
/// drive letter or control character.
fn check_entry_path(filename: &str, name: &str) -> Result<(), Error> {
    let unsafe_entry = |reason: &str| Error::UnsafeArchive {
        file: filename.to_string(),
        reason: format!("its entry `{}` {reason}", name.escape_debug()),
    };
    if name.is_empty() {
        return Err(unsafe_entry("has an empty name"));
    }
    if name.starts_with('/') {
        return Err(unsafe_entry("is an absolute path"));
    }
    if name.contains('\\') {
        return Err(unsafe_entry("contains a backslash"));
    }
    if name.chars().any(char::is_control) {
        return Err(unsafe_entry("contains a control character"));
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    for (i, component) in trimmed.split('/').enumerate() {
        match component {
            "" => return Err(unsafe_entry("has an empty path component")),
            "." | ".." => return Err(unsafe_entry("leaves its directory (`.` or `..`)")),
            c if i == 0 && c.contains(':') => return Err(unsafe_entry("names a drive")),
            _ => {}
        }
    }
    Ok(())
}

/// Only regular files and directories: no links, devices or pipes.
fn check_entry_type(
    filename: &str,
    name: &str,
    unix_mode: Option<u32>,
    is_symlink: bool,
) -> Result<(), Error> {
    const TYPE_MASK: u32 = 0o170000;
    const REGULAR: u32 = 0o100000;
    const DIRECTORY: u32 = 0o040000;
    let kind = unix_mode.map_or(0, |mode| mode & TYPE_MASK);
    if is_symlink || kind == 0o120000 {
        return Err(Error::UnsafeArchive {
            file: filename.to_string(),
            reason: format!("its entry `{}` is a symbolic link", name.escape_debug()),
        });
    }
    if !matches!(kind, 0 | REGULAR | DIRECTORY) {
        return Err(Error::UnsafeArchive {
            file: filename.to_string(),
            reason: format!("its entry `{}` is not a regular file", name.escape_debug()),
        });
    }
    Ok(())
}

/// Compiled code the guest could never load.
fn is_native_code(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    [".so", ".pyd", ".dll", ".dylib"]
        .iter()
        .any(|suffix| file.ends_with(suffix))
        || file.contains(".so.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_names_and_tags() {
        let pure = WheelName::parse("attrs-25.4.0-py3-none-any.whl").unwrap();
        assert_eq!(pure.name.to_string(), "attrs");
        assert!(pure.fits_guest());
        assert!(
            WheelName::parse("six-1.17.0-py2.py3-none-any.whl")
                .unwrap()
                .fits_guest()
        );
        assert!(
            WheelName::parse("x-1.0-1build-py312-none-any.whl")
                .unwrap()
                .fits_guest()
        );
        assert!(
            !WheelName::parse("x-1.0-py315-none-any.whl")
                .unwrap()
                .fits_guest()
        );
        assert!(
            !WheelName::parse("x-1.0-py2-none-any.whl")
                .unwrap()
                .fits_guest()
        );
        let numpy = WheelName::parse("numpy-2.3.5-cp314-cp314-manylinux_2_27_x86_64.whl").unwrap();
        assert!(!numpy.is_pure());
        for bad in [
            "x-1.0.tar.gz",
            "x-1.0-py3-none.whl",
            "x-notaversion!-py3-none-any.whl",
        ] {
            assert!(WheelName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn entry_paths_that_leave_are_refused() {
        for bad in [
            "/etc/passwd",
            "../x.py",
            "a/../../x.py",
            "a//b",
            "./a",
            "C:/x",
            "a\\..\\x",
            "a/\u{0}b",
        ] {
            assert!(check_entry_path("w.whl", bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "a.py",
            "pkg/__init__.py",
            "pkg/",
            "pkg-1.0.dist-info/RECORD",
            "a..b/c",
        ] {
            assert!(check_entry_path("w.whl", good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn metadata_headers_and_record_lines() {
        let metadata = parse_metadata(
            "Metadata-Version: 2.1\nName: Demo\nVersion: 1.0\nRequires-Dist: a>=1\nRequires-Dist: b; extra == 'x'\nRequires-Python: >=3.8\n\nRequires-Dist: not-a-header\n",
        );
        assert_eq!(metadata.name, "Demo");
        assert_eq!(metadata.requires_dist, ["a>=1", "b; extra == 'x'"]);
        assert_eq!(metadata.requires_python.as_deref(), Some(">=3.8"));
        let record = parse_record("\"a,b.py\",sha256=AA,3\nx-1.dist-info/RECORD,,\n").unwrap();
        assert!(record.contains_key("a,b.py"));
        assert!(record["x-1.dist-info/RECORD"].hash.is_none());
        assert!(parse_record("a.py,sha256=AA,3\na.py,sha256=AA,3\n").is_err());
    }
}
