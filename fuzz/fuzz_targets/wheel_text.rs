//! The text a wheel carries, on hostile bytes: wheel file names, METADATA
//! headers and RECORD (CSV) files parse or are refused without panicking,
//! and RECORD's path field is read the same by install and remove.
#![no_main]

use goru_packages::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = goru_fuzz::text(data);
    for line in text.lines().take(64) {
        let _ = fuzzing::wheel_name(line);
    }
    let (name, version, requires, python) = fuzzing::metadata(&text);
    assert!(!name.contains('\n') && !version.contains('\n'));
    assert!(requires.iter().all(|r| !r.contains('\n')));
    assert!(python.is_none_or(|p| !p.is_empty()));
    if let Ok(paths) = fuzzing::record(&text) {
        // `goru deps remove` reads each line's path with `record_path`:
        // it must find the files install listed, and nothing else.
        let mut removed: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(fuzzing::record_path)
            .collect();
        removed.sort();
        let mut listed: Vec<String> = paths.into_iter().filter(|p| !p.is_empty()).collect();
        listed.sort();
        assert_eq!(removed, listed);
    }
});
