//! `goru --allow-host`: the `http` module through the real binary, against a
//! local server the test starts.

mod common;

#[path = "../../runtimes/tests/support/http_server.rs"]
mod http_server;

use common::goru;
use http_server::TestServer;

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
fn a_bad_allow_host_is_a_usage_error() {
    let run = goru(&["--allow-host", "api.example.com", "-l", "python", "-c", "1"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("--allow-host") && run.stderr.contains("`https://api.example.com`"),
        "{run:#?}"
    );
}
