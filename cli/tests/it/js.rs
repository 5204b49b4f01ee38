//! The JavaScript guest through the real `goru` binary: what a user running
//! scripts sees on stdout, stderr and in the exit code.

use crate::common;

use common::{Run, assert_contains_all, goru, goru_in, goru_with_stdin, write_file};
use std::time::Duration;

/// Runs `code` with `goru -l js -c`, extra flags first.
fn js(flags: &[&str], code: &str) -> Run {
    let mut args = flags.to_vec();
    args.extend(["-l", "js", "-c", code]);
    goru(&args)
}

#[test]
fn console_log_prints_to_stdout() {
    let run = js(&[], "console.log(1+1)");
    run.assert_code(0);
    assert_eq!(run.stdout, "2\n");
    assert_eq!(run.stderr, "");
}

#[test]
fn console_formats_values_like_node() {
    let run = js(
        &[],
        "console.log('s', 1.5, -0, 10n, null, undefined, [1, 'a', [2]], {a: 1, 'b-c': {d: [3]}});\
         console.log(new Map([['k', 1]]), new Set([1]), function f() {}, class A {});\
         const o = {}; o.self = o; console.log(o);\
         console.log('%s=%d %j', 'x', 42, {y: 1});\
         print('printed'); console.info('info');\
         console.error('to', 'stderr'); console.warn({w: true})",
    );
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "s 1.5 -0 10n null undefined [ 1, 'a', [ 2 ] ] { a: 1, 'b-c': { d: [ 3 ] } }\n\
         Map(1) { 'k' => 1 } Set(1) { 1 } [Function: f] [class A]\n\
         <ref *1> { self: [Circular *1] }\n\
         x=42 {\"y\":1}\n\
         printed\n\
         info\n"
    );
    assert_eq!(run.stderr, "to stderr\n{ w: true }\n");
}

#[test]
fn js_and_mjs_files_run_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    // A .js file is a script: top-level `var`s land on globalThis.
    write_file(
        dir.path(),
        "script.js",
        "var v = 'script';\nconsole.log(globalThis.v, scriptArgs.join(' '));\n",
    );
    let run = goru_in(Some(dir.path()), &["script.js", "a", "b"], b"");
    run.assert_code(0);
    assert_eq!(run.stdout, "script script.js a b\n");

    // A .mjs file is a module: import/export and import.meta work, and its
    // top-level bindings stay in the module.
    write_file(
        dir.path(),
        "module.mjs",
        "import * as std from 'std';\nexport const x = 1;\nvar v = 2;\n\
         std.out.puts(`${typeof import.meta} ${x} ${typeof globalThis.v}\\n`);\n",
    );
    let run = goru_in(Some(dir.path()), &["module.mjs"], b"");
    run.assert_code(0);
    assert_eq!(run.stdout, "object 1 undefined\n");
}

#[test]
fn an_exception_is_reported_at_the_users_line() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "crash.js",
        "const config = null;\nfunction port() {\n  return config.port;\n}\nconsole.log(port());\n",
    );
    let run = goru_in(Some(dir.path()), &["crash.js"], b"");
    run.assert_code(1);
    assert_eq!(run.stdout, "");
    assert_contains_all(
        &run.stderr,
        &[
            "TypeError: cannot read property 'port' of null",
            "at port (crash.js:3:",
            "(crash.js:5:",
        ],
    );
}

#[test]
fn a_thrown_non_error_and_an_unhandled_rejection_fail_the_run() {
    let run = js(&[], "console.log('before'); throw 'boom'");
    run.assert_code(1);
    assert_eq!(run.stdout, "before\n");
    assert!(run.stderr.contains("boom"), "{}", run.stderr);

    let run = js(
        &[],
        "Promise.reject(new RangeError('nobody caught me')); console.log('sync done')",
    );
    run.assert_code(1);
    assert_eq!(run.stdout, "sync done\n");
    assert!(
        run.stderr.contains("RangeError: nobody caught me"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_syntax_error_exits_1_with_its_position() {
    let run = js(&[], "console.log('never');\nlet x = ;\n");
    run.assert_code(1);
    assert_eq!(run.stdout, "");
    assert_contains_all(&run.stderr, &["SyntaxError", ":2:9"]);
}

#[test]
fn timers_and_promises_run_to_completion_in_order() {
    let code = "\
        const log = [];\n\
        setTimeout(() => log.push('timeout 200'), 200);\n\
        setTimeout(() => log.push('timeout 0'), 0);\n\
        let n = 0;\n\
        const id = setInterval(() => { log.push('interval'); if (++n === 3) clearInterval(id); }, 5);\n\
        const cancelled = setTimeout(() => log.push('cancelled'), 1);\n\
        clearTimeout(cancelled);\n\
        Promise.resolve().then(() => log.push('then'));\n\
        queueMicrotask(() => log.push('microtask'));\n\
        (async () => { await null; log.push('async'); })();\n\
        log.push('sync');\n\
        setTimeout(() => console.log(log.join(', ')), 300);\n";
    let run = js(&[], code);
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "sync, then, microtask, async, timeout 0, interval, interval, interval, timeout 200\n"
    );
}

#[test]
fn top_level_await_works_in_scripts_and_modules() {
    let run = js(
        &[],
        "const v = await new Promise(r => setTimeout(() => r('waited'), 10));\nconsole.log(v);",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "waited\n");

    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "tla.mjs",
        "export const a = await Promise.resolve(41);\nconsole.log(a + 1);\n",
    );
    let run = goru_in(Some(dir.path()), &["tla.mjs"], b"");
    run.assert_code(0);
    assert_eq!(run.stdout, "42\n");

    // A rejection at the top level is the run's exception.
    let run = js(&[], "await Promise.reject(new TypeError('late'))");
    run.assert_code(1);
    assert!(run.stderr.contains("TypeError: late"), "{}", run.stderr);
}

#[test]
fn std_exit_ends_the_run_with_its_code() {
    let run = js(
        &[],
        "console.log('before');\n\
         try { std.exit(3) } catch (e) { console.log('caught') } finally { console.log('finally') }\n\
         console.log('after');",
    );
    run.assert_code(3);
    assert_eq!(run.stdout, "before\n");
    assert_eq!(run.stderr, "");

    // from a timer, with other work still pending
    let run = js(
        &[],
        "setTimeout(() => std.exit(4), 5); setTimeout(() => console.log('never'), 50)",
    );
    run.assert_code(4);
    assert_eq!(run.stdout, "");

    // from a promise job, past a .catch that must not see it
    let run = js(
        &[],
        "Promise.resolve().then(() => std.exit(0)).catch(() => console.log('caught'));\
         setTimeout(() => console.log('never'), 5)",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "");
}

#[test]
fn stdin_is_read_with_readline_and_std_in() {
    let run = goru_with_stdin(
        &[
            "-l",
            "js",
            "-c",
            "let line; const lines = [];\n\
             while ((line = readline()) !== null) lines.push(line);\n\
             console.log(JSON.stringify(lines));",
        ],
        b"first\nsecond line\nlast without newline",
    );
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "[\"first\",\"second line\",\"last without newline\"]\n"
    );

    let run = goru_with_stdin(
        &[
            "-l",
            "js",
            "-c",
            "const n = +std.in.getline();\n\
             const sum = std.in.readAsString().trim().split(/\\s+/).map(Number).reduce((a, b) => a + b, 0);\n\
             std.out.puts(`${n} ${sum}\\n`);\n\
             console.log(std.in.getline(), readline());",
        ],
        b"3\n10 20\n12\n",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "3 42\nnull null\n");
}

#[test]
fn deep_recursion_reaches_10000_and_overflow_is_a_catchable_range_error() {
    let run = js(
        &[],
        "function f(n) { return n === 0 ? 0 : 1 + f(n - 1) }\n\
         console.log(f(10000));\n\
         try { f(1e6) } catch (e) { console.log('caught', e instanceof RangeError, e.message) }\n\
         console.log(f(100));",
    );
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "10000\ncaught true Maximum call stack size exceeded\n100\n"
    );
}

#[test]
fn deep_nesting_in_parsers_is_a_catchable_error() {
    let run = js(
        &[],
        "for (const [what, fn] of [\n\
           ['json', () => JSON.parse('['.repeat(100000))],\n\
           ['json 1e6', () => JSON.parse('['.repeat(1000000))],\n\
           ['eval', () => eval('('.repeat(100000))],\n\
           ['function', () => new Function('return ' + '['.repeat(100000))],\n\
         ]) {\n\
           try { fn(); console.log(what, 'no error') } catch (e) { console.log(what, e instanceof Error) }\n\
         }\n\
         console.log('alive');",
    );
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "json true\njson 1e6 true\neval true\nfunction true\nalive\n"
    );

    // Code that is itself nested too deeply fails like any syntax error.
    let run = js(&[], &"(".repeat(100_000));
    run.assert_code(1);
    assert!(run.stderr.contains("RangeError"), "{}", run.stderr);
}

#[test]
fn math_random_differs_between_two_runs() {
    let first = js(&[], "console.log(Math.random(), Math.random())");
    let second = js(&[], "console.log(Math.random(), Math.random())");
    first.assert_code(0);
    second.assert_code(0);
    assert_ne!(first.stdout, second.stdout);
    let values: Vec<f64> = first
        .stdout
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(values.iter().all(|v| (0.0..1.0).contains(v)), "{values:?}");
    assert_ne!(values[0], values[1]);
}

#[test]
fn the_clock_is_real() {
    let run = js(
        &[],
        "const t = Date.now(); const start = performance.now();\n\
         await new Promise(r => setTimeout(r, 50));\n\
         console.log(t > 1.7e12, performance.now() - start >= 45);",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "true true\n");
}

#[test]
fn an_endless_loop_is_stopped_at_the_timeout() {
    let run = js(&["--timeout", "1s"], "while (true) {}");
    run.assert_code(124);
    assert!(
        run.elapsed >= Duration::from_secs(1) && run.elapsed < Duration::from_secs(5),
        "{run:#?}"
    );
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
}

#[test]
fn a_pending_timer_cannot_outlive_the_timeout() {
    let run = js(&["--timeout", "1s"], "setTimeout(() => {}, 60000)");
    run.assert_code(124);
    assert!(run.elapsed < Duration::from_secs(5), "{run:#?}");
}

#[test]
fn running_out_of_memory_is_a_catchable_error() {
    let run = js(
        &["--memory", "64MiB"],
        "let chunks = [];\n\
         try { for (;;) chunks.push(new Array(1e6).fill(1.5)) }\n\
         catch (e) { console.log(e.name, e.message) }\n\
         chunks = null;\n\
         console.log([1, 2, 3].map(x => x * 2).join());",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "InternalError out of memory\n2,4,6\n");
}

#[test]
fn host_calls_fail_with_a_catchable_error_when_none_is_registered() {
    let run = js(
        &[],
        "try { call('lookup', {id: 1}) } catch (e) { console.log('sync', e instanceof Error) }\n\
         const results = await Promise.allSettled([asyncCall('a'), asyncCall('b', {x: 1})]);\n\
         console.log(results.map(r => r.status).join());",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "sync true\nrejected,rejected\n");
}

#[test]
fn host_call_names_of_built_in_modules_are_reserved() {
    let run = js(
        &["--kv"],
        "try { call('goru:kv.get', {key: 'a'}) } catch (e) { console.log(e.name, e.message) }",
    );
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "TypeError `goru:kv.get` is reserved for goru's built-in modules\n"
    );
}

#[test]
fn the_kv_module_needs_its_flag_and_then_stores_json_values() {
    let run = js(
        &[],
        "try { kv.set('a', 1) } catch (e) { console.log(e.name, e.message.includes('--kv')) }",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "PermissionError true\n");

    let run = js(
        &["--kv"],
        "kv.set('user', {name: 'ada', tags: [1, 2]});\n\
         console.log(kv.get('user'), kv.get('absent', 'fallback'), kv.keys());\n\
         const [before] = await Promise.all([kv.asyncGet('n', 0), kv.asyncSet('n', 7)]);\n\
         console.log(before, kv.get('n'), kv.delete('n'), kv.keys('u'));",
    );
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "{ name: 'ada', tags: [ 1, 2 ] } fallback [ 'user' ]\n0 7 true [ 'user' ]\n"
    );
}

#[test]
fn the_fs_module_reads_and_writes_mounted_directories_only() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "in.txt", "from the host\n");
    let mount = format!("/data:{}:rwc", dir.path().display());
    let run = js(
        &["--mount", &mount],
        "console.log(fs.readText('/data/in.txt').trim(), fs.exists('/data/none'));\n\
         fs.writeJson('/data/out.json', {ok: true});\n\
         console.log(fs.readJson('/data/out.json'), fs.listdir('/data').sort());\n\
         try { fs.readText('/etc/passwd') } catch (e) { console.log(e.name) }",
    );
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "from the host false\n{ ok: true } [ 'in.txt', 'out.json' ]\nPermissionError\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.json")).unwrap(),
        "{\"ok\":true}"
    );

    let read_only = format!("/data:{}:ro", dir.path().display());
    let run = js(
        &["--mount", &read_only],
        "try { fs.writeText('/data/new.txt', 'x') } catch (e) { console.log(e.name) }",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "PermissionError\n");
    assert!(!dir.path().join("new.txt").exists());
}

#[test]
fn the_sandbox_has_no_node_or_host_globals() {
    let run = js(
        &[],
        "console.log(typeof process, typeof require, typeof os, typeof std.open)",
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "undefined undefined undefined undefined\n");
}

#[test]
fn an_exception_message_with_a_nul_byte_is_reported_whole() {
    let run = js(&[], r#"throw new Error("a\x00b")"#);
    run.assert_code(1);
    assert!(run.stderr.starts_with("Error: a\0b\n"), "{run:#?}");
}

#[test]
fn a_huge_exception_message_is_cut_at_the_output_limit_and_says_so() {
    let run = js(
        &["--max-output", "1KiB"],
        "throw new Error('A'.repeat(20_000_000))",
    );
    run.assert_code(1);
    let (traceback, report) = run
        .stderr
        .split_once("warning: ")
        .expect("a warning after the traceback");
    assert!(traceback.len() <= 1025, "{} bytes", traceback.len());
    assert!(traceback.starts_with("Error: AAA"));
    assert_contains_all(
        report,
        &["the exception was cut short", "1KiB output limit"],
    );
}
