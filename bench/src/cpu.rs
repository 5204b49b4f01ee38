//! CPU-bound workloads: goru's Python and JavaScript against native
//! interpreters measured in the same run.
//!
//! Every workload times itself inside the interpreter, around the workload
//! only (`time.perf_counter()` / `performance.now()`), and prints
//! `RESULT <check values> <milliseconds>`; so process start-up, compiling
//! the guest and creating the sandbox are excluded on both sides, and goru
//! and the native interpreter are timed by the same code. goru runs each
//! sample in a fresh session of a warm embedded engine; the natives run
//! `python3 -c` / `node -e` once per sample. The samples of goru and of its
//! baselines alternate, so a change of load on the machine hits both. Each
//! result's check values must match the expected ones, so a broken run cannot
//! pass as a fast one.

use crate::measure::real_executable;
use crate::options::{Options, usage_error};
use goru_runtimes::{Engine, Language, Limits, SessionBuilder, Status};
use std::process::{Command, Stdio};
use std::time::Duration;

struct Workload {
    name: &'static str,
    python: &'static str,
    python_expect: &'static str,
    js: &'static str,
    js_expect: &'static str,
}

const SUM_PY: &str = "import time
t0 = time.perf_counter()
r = sum(i*i for i in range(3_000_000))
t1 = time.perf_counter()
print('RESULT', r, (t1 - t0) * 1e3)
";

const SUM_JS: &str = "function main() {
  const t0 = performance.now();
  let r = 0;
  for (let i = 0; i < 3000000; i++) r += i * i;
  const t1 = performance.now();
  console.log('RESULT', r, t1 - t0);
}
main();
";

const FOR_PY: &str = "import time
t0 = time.perf_counter()
t = 0
for i in range(3_000_000): t += i
t1 = time.perf_counter()
print('RESULT', t, (t1 - t0) * 1e3)
";

const FOR_JS: &str = "function main() {
  const t0 = performance.now();
  let t = 0;
  for (let i = 0; i < 3000000; i++) t += i;
  const t1 = performance.now();
  console.log('RESULT', t, t1 - t0);
}
main();
";

const SORT_PY: &str = "import time
def merge_sort(a):
    if len(a) <= 1:
        return a
    mid = len(a) // 2
    left = merge_sort(a[:mid])
    right = merge_sort(a[mid:])
    out = []
    i = j = 0
    nl, nr = len(left), len(right)
    while i < nl and j < nr:
        if left[i] <= right[j]:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    out.extend(left[i:])
    out.extend(right[j:])
    return out
x = 1
items = []
for _ in range(200_000):
    x = x * 48271 % 2147483647
    items.append(x)
t0 = time.perf_counter()
s = merge_sort(items)
t1 = time.perf_counter()
assert s == sorted(items)
print('RESULT', len(s), s[0], s[100_000], s[-1], (t1 - t0) * 1e3)
";

const SORT_JS: &str = "function mergeSort(a) {
  if (a.length <= 1) return a;
  const mid = a.length >> 1;
  const left = mergeSort(a.slice(0, mid));
  const right = mergeSort(a.slice(mid));
  const out = [];
  let i = 0, j = 0;
  const nl = left.length, nr = right.length;
  while (i < nl && j < nr) {
    if (left[i] <= right[j]) out.push(left[i++]);
    else out.push(right[j++]);
  }
  while (i < nl) out.push(left[i++]);
  while (j < nr) out.push(right[j++]);
  return out;
}
function main() {
  let x = 1;
  const items = [];
  for (let k = 0; k < 200000; k++) {
    x = (x * 48271) % 2147483647;
    items.push(x);
  }
  const t0 = performance.now();
  const s = mergeSort(items);
  const t1 = performance.now();
  const check = items.slice().sort((p, q) => p - q);
  for (let k = 0; k < check.length; k++) if (check[k] !== s[k]) throw new Error('not sorted at ' + k);
  console.log('RESULT', s.length, s[0], s[100000], s[s.length - 1], t1 - t0);
}
main();
";

const JSON_PY: &str = "import json, time
doc = {'items': [{'id': i, 'name': 'item-%d' % i, 'tags': ['red', 'green', 't%d' % (i % 10)],
                  'price': i * 0.25, 'active': i % 3 == 0, 'note': 'lorem ipsum dolor sit amet',
                  'nested': {'x': i, 'y': [i, i + 1, i + 2]}} for i in range(28_000)]}
t0 = time.perf_counter()
back = json.loads(json.dumps(doc))
t1 = time.perf_counter()
assert back == doc
print('RESULT', len(json.dumps(doc)), len(back['items']), (t1 - t0) * 1e3)
";

const JSON_JS: &str = "function main() {
  const items = [];
  for (let i = 0; i < 28000; i++) {
    items.push({id: i, name: 'item-' + i, tags: ['red', 'green', 't' + (i % 10)],
                price: i * 0.25, active: i % 3 === 0, note: 'lorem ipsum dolor sit amet',
                nested: {x: i, y: [i, i + 1, i + 2]}});
  }
  const doc = {items};
  const t0 = performance.now();
  const back = JSON.parse(JSON.stringify(doc));
  const t1 = performance.now();
  const s = JSON.stringify(doc);
  if (JSON.stringify(back) !== s) throw new Error('round trip differs');
  console.log('RESULT', s.length, back.items.length, t1 - t0);
}
main();
";

// Allocation-heavy code at module level, as most scripts are written: every
// list stays alive in a global, so the cyclic collector's cost is on trial
// (CPython 3.14.0's incremental collector took 7 s here when the globals were
// frozen with the snapshot; see docs/performance.md, "Top-level allocation").
const LISTS_PY: &str = "import time
t0 = time.perf_counter()
rows = []
for i in range(200_000):
    rows.append([i, i])
t1 = time.perf_counter()
print('RESULT', len(rows), sum(row[1] for row in rows), (t1 - t0) * 1e3)
";

const LISTS_JS: &str = "const t0 = performance.now();
const rows = [];
for (let i = 0; i < 200000; i++) rows.push([i, i]);
const t1 = performance.now();
let total = 0;
for (const row of rows) total += row[1];
console.log('RESULT', rows.length, total, t1 - t0);
";

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "sum of `i*i` over 3M ints",
        python: SUM_PY,
        python_expect: "8999995500000500000",
        js: SUM_JS,
        // Doubles: past 2^53 the sum rounds, identically in every engine.
        js_expect: "8999995500013889000",
    },
    Workload {
        name: "`for` loop adding 3M ints",
        python: FOR_PY,
        python_expect: "4499998500000",
        js: FOR_JS,
        js_expect: "4499998500000",
    },
    Workload {
        name: "merge sort of 200k ints",
        python: SORT_PY,
        python_expect: "200000 6551 1075217194 2147477497",
        js: SORT_JS,
        js_expect: "200000 6551 1075217194 2147477497",
    },
    Workload {
        name: "200,000 small lists appended at module level",
        python: LISTS_PY,
        python_expect: "200000 19999900000",
        js: LISTS_JS,
        js_expect: "200000 19999900000",
    },
    Workload {
        name: "JSON round trip of a 5 MB document",
        python: JSON_PY,
        python_expect: "5337589 28000",
        js: JSON_JS,
        js_expect: "4735589 28000",
    },
];

/// The Markdown section: one table per language.
pub(crate) fn report(options: &Options) -> String {
    // A sample of the slowest workload takes seconds: a few samples per row.
    let runs = options.runs.clamp(3, 7);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = Engine::new().expect("engine");
    let python3 = real_executable("python3");
    let node = real_executable("node");
    let mut python_rows = Vec::new();
    let mut js_rows = Vec::new();
    let selected: Vec<&Workload> = WORKLOADS
        .iter()
        .filter(|w| {
            options
                .workload
                .as_ref()
                .is_none_or(|text| w.name.contains(text.as_str()))
        })
        .collect();
    if selected.is_empty() {
        usage_error(&format!(
            "no workload's name contains `{}` (workloads: {})",
            options.workload.as_deref().unwrap_or_default(),
            WORKLOADS
                .iter()
                .map(|w| w.name)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    for workload in selected {
        let mut goru_py = Vec::new();
        let mut native_py = Vec::new();
        let mut goru_js = Vec::new();
        let mut jitless = Vec::new();
        let mut jit = Vec::new();
        for _ in 0..runs {
            goru_py.push(in_goru(
                &runtime,
                &engine,
                Language::Python,
                workload.python,
                workload.python_expect,
            ));
            native_py.push(native(
                &python3,
                &["-c", workload.python],
                workload.python_expect,
            ));
            goru_js.push(in_goru(
                &runtime,
                &engine,
                Language::JavaScript,
                workload.js,
                workload.js_expect,
            ));
            jitless.push(native(
                &node,
                &["--jitless", "-e", workload.js],
                workload.js_expect,
            ));
            jit.push(native(&node, &["-e", workload.js], workload.js_expect));
        }
        let (goru_py, native_py) = (median(goru_py), median(native_py));
        let (goru_js, jitless, jit) = (median(goru_js), median(jitless), median(jit));
        python_rows.push(format!(
            "| {} | {} | {} | {:.2}x |",
            workload.name,
            ms(goru_py),
            ms(native_py),
            goru_py / native_py
        ));
        js_rows.push(format!(
            "| {} | {} | {} | {:.2}x | {} | {:.2}x |",
            workload.name,
            ms(goru_js),
            ms(jitless),
            goru_js / jitless,
            ms(jit),
            goru_js / jit
        ));
    }
    format!(
        "### CPU-bound code\n\n\
         Each workload times itself inside the interpreter, around the work only \
         (`time.perf_counter()` / `performance.now()`), so start-up is excluded on both sides; \
         medians of {runs} samples, goru's and the baselines' alternating; every sample's result \
         is checked. goru: a fresh session of the warm embedded engine per sample, default \
         settings (epoch interruption on). Python: `sum(i*i for i in range(3_000_000))`; \
         `t = 0` then `for i in range(3_000_000): t += i` at module level; a merge sort written \
         in Python of 200,000 pseudo-random ints (not `sorted()`); `rows.append([i, i])` 200,000 \
         times at module level (every list kept, so the cyclic garbage collector runs over a \
         growing heap); `json.loads(json.dumps(doc))` of a 5.3 MB document built in the code. \
         JavaScript: the same inside a function (the sum as a `for` loop over doubles; the lists \
         at the top level of the script; the document, without Python's spaces, is 4.7 MB). goru's \
         Python is CPython 3.14 (componentize-py 0.25.1), the baseline the native \
         `{python_version}`; goru's JavaScript is QuickJS-NG, the baselines `node --jitless` \
         (V8's interpreter alone) and `node` ({node_version}).\n\n\
         | Python workload | goru | native python3 | goru / native |\n\
         |---|---|---|---|\n{}\n\n\
         | JavaScript workload | goru | node --jitless | goru / jitless | node | goru / node |\n\
         |---|---|---|---|---|---|\n{}\n",
        python_rows.join("\n"),
        js_rows.join("\n"),
        python_version = version(&python3, "--version"),
        node_version = version(&node, "--version"),
    )
}

/// Runs `code` in a fresh goru session; returns the time it reported.
fn in_goru(
    runtime: &tokio::runtime::Runtime,
    engine: &Engine,
    language: Language,
    code: &str,
    expect: &str,
) -> f64 {
    let mut builder = SessionBuilder::new(language);
    builder.limits(Limits {
        timeout: Duration::from_secs(300),
        memory_bytes: 2 << 30,
        ..Limits::default()
    });
    let outcome = runtime
        .block_on(engine.run_once(&builder, code, "<bench>"))
        .expect("goru runs the workload");
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    assert_eq!(
        outcome.status,
        Status::Ok { value: None },
        "goru {language}: the workload failed; stdout: {stdout}; stderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    reported(&stdout, expect, &format!("goru {language}"))
}

/// Runs a native interpreter on `args`; returns the time the code reported.
fn native(program: &str, args: &[&str], expect: &str) -> f64 {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{program} failed on a workload: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    reported(&stdout, expect, program)
}

/// The milliseconds on the `RESULT` line, after checking its values.
fn reported(stdout: &str, expect: &str, who: &str) -> f64 {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("{who} printed no RESULT line: {stdout}"));
    let (values, time) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("{who}: malformed RESULT line: {line}"));
    assert_eq!(values, expect, "{who} computed a wrong result");
    time.parse::<f64>()
        .unwrap_or_else(|_| panic!("{who}: no time on the RESULT line: {line}"))
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn ms(millis: f64) -> String {
    if millis < 10.0 {
        format!("{millis:.2} ms")
    } else {
        format!("{millis:.0} ms")
    }
}

fn version(program: &str, flag: &str) -> String {
    Command::new(program)
        .arg(flag)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
