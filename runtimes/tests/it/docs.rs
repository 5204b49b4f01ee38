//! docs/sandbox-api.md against the guests: every module function the page
//! names (`kv.get(`, `fs.readText(`, ...) exists in the guest it belongs to.
//! camelCase names are JavaScript's, snake_case names Python's, one-word
//! names both. And every allow-list entry the docs show is one the parser
//! takes.

use goru_runtimes::{Engine, HttpCapability, Language, SessionBuilder, Status};

fn read_doc(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).expect(path)
}

/// The entries the docs show: each `--allow-host ENTRY`, each string in an
/// `"allow": [...]` list, and the first column of sandbox-api.md's table of
/// entries.
fn documented_allow_entries() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for path in [
        "README.md",
        "docs/sandbox-api.md",
        "docs/protocol.md",
        "docs/security.md",
    ] {
        let page = read_doc(path);
        for (at, _) in page.match_indices("--allow-host ") {
            let entry: String = page[at + "--allow-host ".len()..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"`'\"|)".contains(*c))
                .collect();
            // `--allow-host HOST` names the flag, not an entry.
            if !entry.is_empty() && entry != "HOST" {
                found.push((path.to_string(), entry));
            }
        }
        for (at, _) in page.match_indices("\"allow\": [") {
            let list = &page[at + "\"allow\": [".len()..];
            let list = &list[..list.find(']').expect("a closed allow list")];
            for item in list.split(',') {
                let item = item.trim().trim_matches('"');
                if !item.is_empty() && item != "..." {
                    found.push((path.to_string(), item.to_string()));
                }
            }
        }
        if let Some(table) = page.split("| entry | allows |").nth(1) {
            for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
                let first = row.split('|').nth(1).unwrap_or("");
                for entry in first.split('`').skip(1).step_by(2) {
                    found.push((path.to_string(), entry.to_string()));
                }
            }
        }
    }
    found
}

#[test]
fn every_allow_list_entry_in_the_docs_is_valid() {
    let entries = documented_allow_entries();
    assert!(
        entries.len() >= 10,
        "the docs show allow-list entries: {entries:?}"
    );
    let bad: Vec<String> = entries
        .iter()
        .filter_map(|(path, entry)| {
            HttpCapability::allowing([entry.as_str()])
                .validate()
                .err()
                .map(|err| format!("{path}: {err}"))
        })
        .collect();
    assert!(bad.is_empty(), "entries the parser refuses: {bad:#?}");
}

fn documented_functions() -> Vec<(String, String)> {
    let page = read_doc("docs/sandbox-api.md");
    let mut found = Vec::new();
    let mut modules = goru_runtimes::guest_globals(Language::Python);
    modules.extend(goru_runtimes::guest_globals(Language::JavaScript));
    modules.sort();
    modules.dedup();
    for module in modules {
        let prefix = format!("{module}.");
        for (at, _) in page.match_indices(&prefix) {
            let before = page[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let rest = &page[at + prefix.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && rest[name.len()..].starts_with('(') {
                found.push((module.to_string(), name));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The guests install every global the engine's module registry lists.
#[tokio::test]
async fn every_registered_module_is_in_its_guest() {
    let engine = Engine::new().unwrap();
    for language in Language::ALL {
        let names = goru_runtimes::guest_globals(language);
        assert!(names.contains(&"kv"), "{language}: {names:?}");
        let code = match language {
            Language::Python => {
                format!("import builtins\nprint(all(hasattr(builtins, n) for n in {names:?}))")
            }
            Language::JavaScript => format!(
                "console.log({names:?}.every(n => typeof globalThis[n] !== 'undefined') ? 'True' : 'False')"
            ),
        };
        let outcome = engine
            .run_once(&SessionBuilder::new(language), &code, "<modules>")
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&outcome.stdout),
            "True\n",
            "{language}: {names:?} {outcome:?}"
        );
    }
}

fn is_for(language: Language, name: &str) -> bool {
    let camel = name.chars().any(|c| c.is_ascii_uppercase());
    let snake = name.contains('_');
    match language {
        Language::Python => !camel,
        Language::JavaScript => !snake,
    }
}

#[tokio::test]
async fn every_documented_module_function_exists() {
    let functions = documented_functions();
    assert!(
        functions.len() > 20,
        "the page names the module functions: {functions:?}"
    );
    let engine = Engine::new().unwrap();
    for language in Language::ALL {
        let names: Vec<&(String, String)> = functions
            .iter()
            .filter(|(_, f)| is_for(language, f))
            .collect();
        let checks: Vec<String> = names
            .iter()
            .map(|(module, function)| match language {
                Language::Python => format!("callable(getattr({module}, {function:?}, None))"),
                Language::JavaScript => format!("typeof {module}[{function:?}] === 'function'"),
            })
            .collect();
        let code = match language {
            Language::Python => format!("print([{}])", checks.join(", ")),
            Language::JavaScript => format!("console.log(JSON.stringify([{}]))", checks.join(", ")),
        };
        let outcome = engine
            .run_once(&SessionBuilder::new(language), &code, "<docs>")
            .await
            .unwrap();
        assert_eq!(
            outcome.status,
            Status::Ok { value: None },
            "{language}: {outcome:?}"
        );
        let text = String::from_utf8(outcome.stdout).unwrap().to_lowercase();
        let results: Vec<&str> = text
            .trim()
            .trim_matches(['[', ']'])
            .split(',')
            .map(str::trim)
            .collect();
        let missing: Vec<String> = names
            .iter()
            .zip(&results)
            .filter(|(_, ok)| **ok != "true")
            .map(|((m, f), _)| format!("{m}.{f}"))
            .collect();
        assert!(
            missing.is_empty(),
            "{language} lacks documented functions: {missing:?}"
        );
    }
}
