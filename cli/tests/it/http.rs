//! `goru --allow-host`: the `http` module through the real binary, against a
//! local server the test starts.

use crate::common;

use common::goru;
use goru_tests::http_server::TestServer;

#[test]
fn allow_host_enables_http_for_that_origin() {
    let server = TestServer::start();
    let base = server.origin();
    let code = format!(
        "r = http.get('{base}/text')\nprint(r.status_code, r.text)\n\
         print(http.post('{base}/echo', json=[1, 2]).json())"
    );
    let run = goru(&["--allow-host", &base, "-l", "python", "-c", &code]);
    run.assert_code(0);
    assert_eq!(run.stdout, "200 hello, wörld\n[1, 2]\n");
}

#[test]
fn without_allow_host_http_is_a_permission_error_naming_the_flag() {
    let server = TestServer::start();
    let code = format!("http.get('{}/text')", server.origin());
    let run = goru(&["-l", "python", "-c", &code]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("PermissionError") && run.stderr.contains("`--allow-host HOST`"),
        "{run:#?}"
    );
    assert_eq!(server.connection_count(), 0);

    // Another origin allowed: this one still is not, and the message says
    // how to allow it.
    let run = goru(&[
        "--allow-host",
        "https://api.example.com",
        "-l",
        "python",
        "-c",
        &code,
    ]);
    run.assert_code(1);
    let expected = format!("`--allow-host {}`", server.origin());
    assert!(run.stderr.contains(&expected), "{run:#?}");
    assert_eq!(server.connection_count(), 0);
}

#[test]
fn allow_host_takes_every_form_of_entry_against_a_loopback_server() {
    let server = TestServer::start();
    let port = server.port;
    let url = format!("{}/text", server.origin());
    let code = format!("print(http.get('{url}').status_code)");
    // (entry, whether it allows `http://127.0.0.1:PORT/text`)
    let rows = [
        (format!("127.0.0.1:{port}"), true),
        (format!("http://127.0.0.1:{port}"), true),
        (format!("http://127.0.0.1:{port}/"), true),
        (format!("HTTP://127.0.0.1:{port}"), true),
        (format!("0x7f.0.0.1:{port}"), true),
        (format!("https://127.0.0.1:{port}"), false),
        ("127.0.0.1".to_string(), false),
        (format!("127.0.0.2:{port}"), false),
        (format!("[::1]:{port}"), false),
        (format!("localhost:{port}"), false),
    ];
    for (entry, allowed) in rows {
        let before = server.connection_count();
        let run = goru(&["--allow-host", &entry, "-l", "python", "-c", &code]);
        if allowed {
            run.assert_code(0);
            assert_eq!(run.stdout, "200\n", "{entry}: {run:#?}");
        } else {
            run.assert_code(1);
            assert!(run.stderr.contains("PermissionError"), "{entry}: {run:#?}");
            assert_eq!(server.connection_count(), before, "{entry} connected");
        }
    }
}

#[test]
fn a_bad_allow_host_is_a_usage_error_with_the_reason_and_a_hint() {
    // (entry, a part of the reason)
    let rows = [
        ("ftp://api.example.com", "`http` or `https`"),
        ("api.example.com/v1", "not a path"),
        ("::1", "brackets"),
        ("api.example.com:0", "1 to 65535"),
    ];
    for (entry, reason) in rows {
        let run = goru(&["--allow-host", entry, "-l", "python", "-c", "1"]);
        run.assert_code(2);
        assert!(
            run.stderr
                .contains(&format!("invalid allowed host `{entry}`"))
                && run.stderr.contains(reason)
                && run
                    .stderr
                    .contains("hint: allow a host with `--allow-host api.example.com`"),
            "{entry}: {run:#?}"
        );
    }
}
