//! docs/sandbox-api.md against the guests: every module function the page
//! names (`kv.get(`, `fs.readText(`, ...) exists in the guest it belongs to.
//! camelCase names are JavaScript's, snake_case names Python's, one-word
//! names both.

use goru_runtimes::{Engine, Language, SessionBuilder, Status};

fn documented_functions() -> Vec<(String, String)> {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/sandbox-api.md"
    ))
    .expect("docs/sandbox-api.md");
    let mut found = Vec::new();
    for module in ["kv", "fs", "http"] {
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
