//! Capabilities belong to their session: two sessions running at the same
//! time, one Python and one JavaScript, each with its own kv store, mount and
//! allowed host, see nothing of the other's.

use goru_runtimes::{
    Capabilities, Engine, HttpCapability, KvLimits, Language, Mount, MountMode, SessionBuilder,
};
use goru_tests::http_server::TestServer;
use std::path::Path;

fn builder(language: Language, dir: &Path, server: &TestServer) -> SessionBuilder {
    let mut builder = SessionBuilder::new(language);
    builder.capabilities(Capabilities {
        kv: Some(KvLimits::default()),
        mounts: vec![Mount {
            guest: "/data".into(),
            host: dir.to_path_buf(),
            mode: MountMode::Ro,
        }],
        http: Some(HttpCapability::allowing([server.origin()])),
        ..Capabilities::none()
    });
    builder
}

const PYTHON: &str = r#"
kv.set("owner", "python")
mine = open("/data/owner.txt").read()
ok = http.get(ORIGIN_MINE + "/text").status_code
try:
    http.get(ORIGIN_OTHER + "/text")
    other = "reached"
except PermissionError:
    other = "refused"
print(mine, ok, other, kv.keys(), kv.get("owner"))
"#;

const JS: &str = r#"
kv.set("owner", "js");
const mine = fs.readText("/data/owner.txt");
const ok = http.get(ORIGIN_MINE + "/text").status;
let other;
try { http.get(ORIGIN_OTHER + "/text"); other = "reached"; }
catch (e) { other = e.name === "PermissionError" ? "refused" : "other error: " + e; }
console.log(mine, ok, other, JSON.stringify(kv.keys()), kv.get("owner"));
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_see_only_their_own_capabilities() {
    let engine = Engine::new().unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(dir_a.path().join("owner.txt"), "dir-a").unwrap();
    std::fs::write(dir_b.path().join("owner.txt"), "dir-b").unwrap();
    let (server_a, server_b) = (TestServer::start(), TestServer::start());

    let python = PYTHON
        .replace("ORIGIN_MINE", &format!("{:?}", server_a.origin()))
        .replace("ORIGIN_OTHER", &format!("{:?}", server_b.origin()));
    let js = JS
        .replace("ORIGIN_MINE", &format!("{:?}", server_b.origin()))
        .replace("ORIGIN_OTHER", &format!("{:?}", server_a.origin()));
    let a = builder(Language::Python, dir_a.path(), &server_a);
    let b = builder(Language::JavaScript, dir_b.path(), &server_b);
    for _ in 0..3 {
        let (out_a, out_b) = tokio::join!(
            engine.run_once(&a, &python, "<a>"),
            engine.run_once(&b, &js, "<b>")
        );
        let (out_a, out_b) = (out_a.unwrap(), out_b.unwrap());
        assert_eq!(
            String::from_utf8_lossy(&out_a.stdout),
            "dir-a 200 refused ['owner'] python\n",
            "{out_a:?}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out_b.stdout),
            "dir-b 200 refused [\"owner\"] js\n",
            "{out_b:?}"
        );
    }
}
