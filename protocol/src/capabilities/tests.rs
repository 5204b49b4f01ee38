use super::*;
use serde_json::json;

fn from(value: serde_json::Value) -> Capabilities {
    serde_json::from_value(value).expect("capabilities")
}

#[test]
fn the_serde_form_is_camel_case_and_refuses_unknown_fields() {
    let capabilities = from(json!({
        "kv": {},
        "deterministic": {"seed": 7},
        "mounts": [{"guest": "/data", "host": "/srv", "mode": "rw"}],
        "fsLimits": {"maxReadBytes": 10},
        "http": {"allow": ["api.example.com"], "timeoutMs": 500},
        "packages": {"dir": "/pkgs", "allowInstall": ["attrs"], "indexUrl": "https://i.example/simple"},
    }));
    assert_eq!(capabilities.kv, Some(KvLimits::default()));
    assert_eq!(capabilities.deterministic.as_ref().unwrap().seed, 7);
    assert_eq!(
        capabilities.deterministic.as_ref().unwrap().start_time_ms,
        DEFAULT_START_TIME_MS
    );
    assert_eq!(capabilities.mounts[0].mode, MountMode::Rw);
    assert_eq!(capabilities.fs_limits.max_read_bytes, 10);
    let http = capabilities.http.as_ref().unwrap();
    assert_eq!(http.timeout, std::time::Duration::from_millis(500));
    assert_eq!(http.max_redirects, 5);
    assert_eq!(
        capabilities.packages.as_ref().unwrap().allow_install,
        ["attrs"]
    );
    let again: Capabilities =
        serde_json::from_value(serde_json::to_value(&capabilities).unwrap()).unwrap();
    assert_eq!(again, capabilities);
    for bad in [
        json!({"network": true}),
        json!({"kv": {"maxKeys": 1}}),
        json!({"http": {"hosts": []}}),
        json!({"mounts": [{"guest": "/d", "host": "/h", "mode": "ro", "x": 1}]}),
        json!({"packages": {"dir": "/p", "index": "x"}}),
    ] {
        assert!(
            serde_json::from_value::<Capabilities>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    assert_eq!(from(json!({})), Capabilities::none());
}

#[test]
fn each_error_names_its_option_and_flag() {
    // (capabilities, language, option, flag, a part of the message)
    let rows = [
        (
            json!({"mounts": [{"guest": "/a", "host": "/h", "mode": "ro"},
                              {"guest": "b", "host": "/h", "mode": "ro"}]}),
            Language::Python,
            "mounts[1].guest",
            Some("--mount"),
            "absolute path",
        ),
        (
            json!({"mounts": [{"guest": "/a", "host": "/h", "mode": "ro"},
                              {"guest": "/a", "host": "/g", "mode": "ro"}]}),
            Language::Python,
            "mounts[1].guest",
            Some("--mount"),
            "given twice",
        ),
        (
            json!({"mounts": [{"guest": "/packages", "host": "/h", "mode": "ro"}],
                   "packages": {"dir": "/p"}}),
            Language::Python,
            "mounts[0].guest",
            Some("--mount"),
            "where the packages directory is mounted",
        ),
        (
            json!({"http": {"allow": ["api.example.com", "ftp://x.example"]}}),
            Language::JavaScript,
            "http.allow[1]",
            Some("--allow-host"),
            "invalid allowed host `ftp://x.example`",
        ),
        (
            json!({"http": {"allow": ["api.example.com"], "timeoutMs": 0}}),
            Language::Python,
            "http.timeoutMs",
            None,
            "more than 0",
        ),
        (
            json!({"packages": {"dir": "/p"}}),
            Language::JavaScript,
            "packages",
            Some("--packages"),
            "Python sessions only",
        ),
    ];
    for (value, language, option, flag, message) in rows {
        let err = from(value.clone()).validate(language).unwrap_err();
        assert_eq!(err.option(), option, "{value}");
        assert_eq!(err.flag(), flag, "{value}");
        assert!(err.to_string().contains(message), "{value}: {err}");
    }
    // Mount points are checked before packages' language.
    let both = from(
        json!({"mounts": [{"guest": "/", "host": "/h", "mode": "ro"}],
                           "packages": {"dir": "/p"}}),
    );
    assert_eq!(
        both.validate(Language::JavaScript)
            .unwrap_err()
            .capability(),
        Capability::Mounts
    );
}

#[test]
fn relative_host_paths_are_named() {
    let relative = from(json!({"mounts": [{"guest": "/a", "host": "rel", "mode": "ro"}]}));
    let err = relative.require_absolute_paths().unwrap_err();
    assert_eq!(err.option(), "mounts[0].host");
    assert_eq!(err.to_string(), "mount host path `rel` must be absolute");
    let relative = from(json!({"packages": {"dir": "pkgs"}}));
    let err = relative.require_absolute_paths().unwrap_err();
    assert_eq!(err.option(), "packages.dir");
    assert_eq!(err.to_string(), "packages dir `pkgs` must be absolute");
    assert_eq!(Capabilities::none().require_absolute_paths(), Ok(()));
}

#[test]
fn packages_are_preopened_read_only_after_the_mounts() {
    let capabilities = from(
        json!({"mounts": [{"guest": "/a", "host": "/h", "mode": "rwc"}], "packages": {"dir": "/p"}}),
    );
    let preopens = capabilities.preopens();
    assert_eq!(preopens.len(), 2);
    assert_eq!(preopens[1], Mount::new("/packages", "/p", MountMode::Ro));
}
