//! The guest languages.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A language goru can run: `"python"` or `"javascript"` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// CPython 3.14.
    Python,
    /// QuickJS-NG (ES2023).
    JavaScript,
}

impl Language {
    /// Every language, in a stable order.
    pub const ALL: [Language; 2] = [Language::Python, Language::JavaScript];

    /// The canonical name: `python` or `javascript`.
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "javascript",
        }
    }

    /// The language a file's extension names (`.py`, `.js`, `.mjs`, `.cjs`), if any.
    pub fn from_path(path: &Path) -> Option<Language> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "py" => Some(Language::Python),
            "js" | "mjs" | "cjs" => Some(Language::JavaScript),
            _ => None,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A language name that is not one of `python`, `py`, `javascript`, `js`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language `{0}` (expected `python`, `py`, `javascript` or `js`)")]
pub struct UnknownLanguage(pub String);

impl FromStr for Language {
    type Err = UnknownLanguage;

    /// Parses `python`, `py`, `javascript`, `js`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "python" | "py" => Ok(Language::Python),
            "javascript" | "js" => Ok(Language::JavaScript),
            _ => Err(UnknownLanguage(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_case_insensitively() {
        for (text, expected) in [
            ("python", Language::Python),
            ("PY", Language::Python),
            ("Python", Language::Python),
            ("javascript", Language::JavaScript),
            ("JS", Language::JavaScript),
        ] {
            assert_eq!(text.parse::<Language>(), Ok(expected), "{text}");
        }
        assert_eq!(
            "ruby".parse::<Language>(),
            Err(UnknownLanguage("ruby".into()))
        );
        assert!("".parse::<Language>().is_err());
    }

    #[test]
    fn wire_names_are_the_canonical_names() {
        for language in Language::ALL {
            assert_eq!(
                serde_json::to_value(language).unwrap(),
                serde_json::Value::String(language.name().into())
            );
        }
        assert!(serde_json::from_str::<Language>("\"js\"").is_err());
    }

    #[test]
    fn detects_language_from_extension() {
        assert_eq!(
            Language::from_path(Path::new("a.py")),
            Some(Language::Python)
        );
        assert_eq!(
            Language::from_path(Path::new("dir/a.JS")),
            Some(Language::JavaScript)
        );
        assert_eq!(
            Language::from_path(Path::new("a.mjs")),
            Some(Language::JavaScript)
        );
        assert_eq!(Language::from_path(Path::new("a.txt")), None);
        assert_eq!(Language::from_path(Path::new("Makefile")), None);
    }
}
