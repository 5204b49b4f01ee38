//! Package names and specifiers as users and guests write them (`goru deps
//! install`, `install_pkg(name, spec)`): each parses or is refused with a
//! typed error, nothing that names a URL, path, marker or installer option
//! is accepted, and an accepted request reads back the same from its text.
//! Every line is also read as a wheel's `Requires-Dist`, as the resolver
//! reads what a package index serves.
#![no_main]

use goru_packages::{Request, package_name, version_specifiers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = goru_fuzz::text(data);
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(request) = Request::parse(first) {
        let trimmed = first.trim();
        assert!(!trimmed.starts_with('-') && !trimmed.contains(['@', ';']));
        assert!(!trimmed.contains("://"));
        let shown = request.to_string();
        let again = Request::parse(&shown)
            .unwrap_or_else(|e| panic!("`{first}` shows as `{shown}`, which is refused: {e}"));
        assert_eq!(again, request, "`{first}` shows as `{shown}`");
    }
    if let Ok(name) = package_name(first) {
        let again = package_name(name.as_ref()).expect("a normalized name is valid");
        assert_eq!(again, name);
    }
    if let Ok(specifiers) = version_specifiers(rest) {
        let shown = specifiers.to_string();
        let again = version_specifiers(&shown)
            .unwrap_or_else(|e| panic!("`{rest}` shows as `{shown}`, which is refused: {e}"));
        assert_eq!(again, specifiers);
        let _ = Request::from_parts(first, rest);
    }
    for line in text.lines().take(16) {
        let _ = goru_packages::fuzzing::requires_dist(line);
    }
});
