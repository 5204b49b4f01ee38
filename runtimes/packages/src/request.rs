//! What a user asks for: a package name, optional extras and a PEP 440
//! version specifier. Never a URL, a path, a marker or an installer option.

use crate::Error;
use pep440_rs::VersionSpecifiers;
use pep508_rs::{ExtraName, PackageName, VersionOrUrl};
use std::fmt;
use std::str::FromStr;

/// The longest name or specifier accepted (PyPI's own names are far shorter).
const MAX_LEN: usize = 256;

/// One requested package: `attrs`, `attrs>=22`, `jinja2[i18n]==3.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The normalized name (PEP 503).
    pub name: PackageName,
    pub extras: Vec<ExtraName>,
    /// Empty: any version.
    pub specifiers: VersionSpecifiers,
}

impl Request {
    /// Any version of `name`.
    pub fn any(name: &str) -> Result<Self, Error> {
        Ok(Request {
            name: package_name(name)?,
            extras: Vec::new(),
            specifiers: VersionSpecifiers::empty(),
        })
    }

    /// A name and a separate specifier, as `install_pkg(name, spec)` gives
    /// them. The specifier must be PEP 440 and nothing else: no URL, marker,
    /// extra or option.
    pub fn from_parts(name: &str, specifier: &str) -> Result<Self, Error> {
        let mut request = Request::any(name)?;
        request.specifiers = version_specifiers(specifier)?;
        Ok(request)
    }

    /// A requirement as typed on the command line: `NAME[EXTRAS]SPEC`, such
    /// as `attrs`, `attrs>=22.1` or `jinja2[i18n]==3.*`.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidRequirement {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let input_trimmed = input.trim();
        if input_trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        if input_trimmed.len() > MAX_LEN {
            return Err(invalid("it is too long"));
        }
        if input_trimmed.starts_with('-') {
            return Err(invalid(
                "installer options are not accepted, only NAME[EXTRAS]SPEC such as `attrs>=22`",
            ));
        }
        if input_trimmed.contains(';') {
            return Err(invalid("environment markers are not accepted here"));
        }
        if input_trimmed.contains('@') || input_trimmed.contains("://") {
            return Err(invalid(
                "URLs and paths are not accepted: goru installs only from its package index",
            ));
        }
        let requirement =
            requirement(input_trimmed).map_err(|e| invalid(&first_line(&e.to_string())))?;
        let specifiers = match requirement.version_or_url {
            None => VersionSpecifiers::empty(),
            Some(VersionOrUrl::VersionSpecifier(specifiers)) => specifiers,
            Some(VersionOrUrl::Url(_)) => {
                return Err(invalid(
                    "URLs are not accepted: goru installs only from its package index",
                ));
            }
        };
        Ok(Request {
            name: requirement.name,
            extras: requirement.extras,
            specifiers,
        })
    }
}

impl FromStr for Request {
    type Err = Error;
    fn from_str(input: &str) -> Result<Self, Error> {
        Request::parse(input)
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.extras.is_empty() {
            let extras: Vec<String> = self.extras.iter().map(ToString::to_string).collect();
            write!(f, "[{}]", extras.join(","))?;
        }
        write!(f, "{}", self.specifiers)
    }
}

/// Validates and normalizes a package name (PEP 503: lower case, runs of
/// `-`, `_`, `.` become one `-`).
pub fn package_name(name: &str) -> Result<PackageName, Error> {
    let invalid = || Error::InvalidName {
        name: name.chars().take(MAX_LEN).collect(),
    };
    if name.is_empty() || name.len() > MAX_LEN {
        return Err(invalid());
    }
    let last = name.as_bytes()[name.len() - 1];
    if !last.is_ascii_alphanumeric() {
        return Err(invalid());
    }
    PackageName::new(name.to_string()).map_err(|_| invalid())
}

/// Parses a PEP 440 specifier set (`>=1.0`, `==2.*`, `~=1.4, !=1.4.2`);
/// empty means any version.
pub fn version_specifiers(specifier: &str) -> Result<VersionSpecifiers, Error> {
    let invalid = |reason: &str| Error::InvalidRequirement {
        input: specifier.chars().take(MAX_LEN).collect(),
        reason: reason.to_string(),
    };
    if specifier.len() > MAX_LEN {
        return Err(invalid("it is too long"));
    }
    let trimmed = specifier.trim();
    if trimmed.is_empty() {
        return Ok(VersionSpecifiers::empty());
    }
    // PEP 440 operators start every clause; anything else (a URL, a path,
    // `--index-url`, a marker) is refused before parsing.
    let allowed = |c: char| c.is_ascii_alphanumeric() || " .,*=<>!~+-_".contains(c);
    if !trimmed.chars().all(allowed) || trimmed.starts_with('-') {
        return Err(invalid(
            "only a PEP 440 version specifier such as `>=1.0` or `==2.*` is accepted \
             (no URLs, markers or installer options)",
        ));
    }
    VersionSpecifiers::from_str(trimmed).map_err(|e| invalid(&first_line(&e.to_string())))
}

/// Parses a PEP 508 requirement (a user's, or a wheel's `Requires-Dist`).
///
/// pep508_rs 0.9.2 panics on a name or an extra that ends in `.`, `-` or
/// `_` and is followed by anything (`a_ >=1`, `b-[x]`, `c[x_]`): a package
/// index could crash the installer with one line of METADATA. Such names
/// are refused here before they reach the parser (found by fuzzing,
/// docs/fuzzing.md). Errors are the parser's message alone (see below).
pub(crate) fn requirement(
    text: &str,
) -> Result<pep508_rs::Requirement<pep508_rs::VerbatimUrl>, String> {
    // pep508_rs 0.9.2 also slices text at byte offsets inside multi-byte
    // characters (cursor.rs:40, in markers); a requirement is ASCII.
    if !text.is_ascii() {
        return Err("a requirement must be ASCII text".to_string());
    }
    let (name, rest) = identifier(text.trim_start());
    if name.ends_with(['.', '-', '_']) {
        return Err(format!(
            "the package name `{name}` must end with a letter or digit"
        ));
    }
    if let Some(extras) = rest.trim_start().strip_prefix('[') {
        let extras = extras.split(']').next().unwrap_or_default();
        for extra in extras.split(',') {
            let (extra, _) = identifier(extra.trim_start());
            if extra.ends_with(['.', '-', '_']) {
                return Err(format!(
                    "the extra `{extra}` must end with a letter or digit"
                ));
            }
        }
    }
    // Only the message: the error's own Display slices its input at byte
    // offsets that can fall inside a character, and panics there.
    pep508_rs::Requirement::from_str(text).map_err(|e| e.message.to_string())
}

/// The leading run of name characters (`A-Z a-z 0-9 . - _`), and the rest.
fn identifier(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .unwrap_or(text.len());
    text.split_at(end)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_and_validated() {
        assert_eq!(
            package_name("Python_Dateutil").unwrap().to_string(),
            "python-dateutil"
        );
        assert_eq!(
            package_name("zope.interface").unwrap().to_string(),
            "zope-interface"
        );
        for bad in ["", "-x", "x-", "a b", "a/b", "../x", "x@y", "ä"] {
            assert!(package_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(package_name(&"a".repeat(257)).is_err());
    }

    #[test]
    fn requirements_parse_and_refuse_urls_markers_options() {
        let request = Request::parse("Jinja2[i18n]>=3,<4").unwrap();
        assert_eq!(request.name.to_string(), "jinja2");
        assert_eq!(request.extras.len(), 1);
        assert!(request.specifiers.contains(&"3.1.4".parse().unwrap()));
        assert!(!request.specifiers.contains(&"4.0".parse().unwrap()));
        for bad in [
            "",
            "attrs @ https://example.com/attrs.whl",
            "attrs; python_version<'3'",
            "--index-url=https://evil",
            "-e .",
            "attrs>=",
            "https://example.com/x.whl",
        ] {
            assert!(Request::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn requirements_that_crash_pep508_rs_are_refused_not_a_panic() {
        for input in ["a_ >=1", "a-(1)", "a.[x]", "Foo_("] {
            let err = Request::parse(input).unwrap_err().to_string();
            assert!(
                err.contains("must end with a letter or digit"),
                "{input}: {err}"
            );
        }
        // As a wheel's Requires-Dist, markers included.
        for input in ["a_ >=1", "b- ; python_version > '3'", " c.[x] (>=1)"] {
            let err = requirement(input).unwrap_err();
            assert!(
                err.contains("must end with a letter or digit"),
                "{input}: {err}"
            );
        }
        for input in ["a[x_]", "a [ y , z- ] >=1", "Fo[o_\n"] {
            let err = requirement(input).unwrap_err();
            assert!(
                err.contains("must end with a letter or digit"),
                "{input}: {err}"
            );
        }
        // pep508_rs's error Display panics on this one (a byte offset
        // inside `\u{fffd}`); the message alone is safe.
        let err = requirement("o[o\u{b}\u{fffd}\u{fffd}s*").unwrap_err();
        assert!(!err.is_empty());
        assert!(Request::parse("o[o\u{b}\u{fffd}s*").is_err());
        let err = requirement("b;\"\0\">\"\0\">!!\u{fffd}T").unwrap_err();
        assert!(err.contains("ASCII"), "{err}");
        assert!(requirement("a_b >=1").is_ok());
        assert!(requirement("a[x_y, z] >=1").is_ok());
    }

    #[test]
    fn specifiers_are_pep_440_only() {
        assert!(version_specifiers("").unwrap().is_empty());
        assert!(
            version_specifiers(">=1.0, !=1.2")
                .unwrap()
                .contains(&"1.3".parse().unwrap())
        );
        for bad in [
            "@ https://example.com/x.whl",
            "--extra-index-url http://x",
            ">=1; os_name=='nt'",
            "file:///etc/passwd",
            "latest",
            "-r requirements.txt",
        ] {
            assert!(version_specifiers(bad).is_err(), "{bad:?} accepted");
        }
    }
}
