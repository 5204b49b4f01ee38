//! The JavaScript guest: QuickJS-NG built with clang + wasi-libc and our C
//! glue in `guests/js`, made a component with wit-component.
//!
//! Steps, all under `work_dir/js` (recreated on every build):
//! 1. copy the pinned QuickJS-NG sources and patch them (the stack check);
//! 2. generate the C bindings of the WIT world with wit-bindgen-c;
//! 3. compile QuickJS, the bindings and the glue for wasm32-wasi;
//! 4. link a reactor module with the stack first in linear memory;
//! 5. embed the world's type metadata and encode a component with the
//!    preview1 reactor adapter.

use crate::ctx::Ctx;
use crate::pinned;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The clang that targets wasm32-wasi against Debian's wasi-libc.
const CLANG: &str = "clang-19";
/// The linker clang-19 runs for wasm targets (Debian's lld-19).
const LINKER: &str = "wasm-ld-19";
const TOOLCHAIN_HINT: &str = "hint: install the toolchain with \
     `apt-get install -y clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32`";

/// The world the glue implements.
const WORLD: &str = "guest";

/// Size of the stack in linear memory, linked first so that an overflow runs
/// off address 0 and traps instead of overwriting the heap. QuickJS keeps
/// each JS call's arguments and locals there, so this decides how deep JS
/// recursion goes: QuickJS may use all of it but `STACK_RESERVE_BYTES`,
/// about 11,000 calls of `f(n) { return n === 0 ? 0 : 1 + f(n - 1) }` (node:
/// about 10,500) before a catchable RangeError.
///
/// The engine's native wasm stack must outlast that limit. Measured per byte
/// of it: about 2.3 bytes of native stack for JS calls, 13-14 for the parser
/// (`eval("(".repeat(n))`) and `JSON.parse` on deeply nested input, whose
/// frames barely touch linear memory. So the host needs `max_wasm_stack` of
/// at least 14 x 3.75 MiB = 53 MiB; 64 MiB passed every case tried.
const LINEAR_STACK_BYTES: u64 = 4 << 20;
/// What QuickJS leaves free below its limit for the C code that runs after it
/// noticed the overflow (throwing the RangeError, building its backtrace) and
/// for C recursion it does not check.
const STACK_RESERVE_BYTES: u64 = 256 << 10;

/// The QuickJS-NG sources we compile; the headers they include are copied too.
const QUICKJS_SOURCES: &[&str] = &["quickjs.c", "libregexp.c", "libunicode.c", "dtoa.c"];

pub fn build(ctx: &Ctx, output: &Path) -> Result<()> {
    check_toolchain()?;
    // Two builders at once (`./x test` beside a manual build) would delete
    // each other's intermediates and interleave writes to the output.
    let lock_path = ctx.work_dir.join("js.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;

    let upstream = pinned::quickjs_source(&ctx.work_dir)?;
    let dir = ctx.work_dir.join("js");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let src = dir.join("quickjs");
    let obj = dir.join("obj");
    std::fs::create_dir_all(&src)?;
    std::fs::create_dir_all(&obj)?;

    copy_quickjs(&upstream, &src)?;
    apply_patches(&src.join("quickjs.c"), STACK_CHECK_PATCHES)?;
    let bindings = dir.join("bindings");
    let binding_sources = generate_bindings(&ctx.wit_dir(), &bindings)?;
    embed_module_wrappers(&ctx.modules_dir(), &bindings.join("goru_modules.h"))?;

    let glue_dir = ctx.guests_dir.join("js");
    let glue = glue_dir.join("glue.c");
    let mut jobs = Vec::new();
    for name in QUICKJS_SOURCES {
        jobs.push(compile(&src.join(name), &obj, &[&src], CFlags::ThirdParty)?);
    }
    for source in &binding_sources {
        jobs.push(compile(source, &obj, &[&bindings], CFlags::Generated)?);
    }
    let glue_defines = [
        format!("-DGORU_STACK_SIZE={LINEAR_STACK_BYTES}"),
        format!("-DGORU_STACK_RESERVE={STACK_RESERVE_BYTES}"),
    ];
    jobs.push(compile(
        &glue,
        &obj,
        &[&src, &bindings, &glue_dir],
        CFlags::Ours(&glue_defines),
    )?);
    let mut failed = Vec::new();
    for (source, mut child) in jobs {
        let status = child
            .wait()
            .with_context(|| format!("waiting for {CLANG}"))?;
        if !status.success() {
            failed.push(source.display().to_string());
        }
    }
    if !failed.is_empty() {
        bail!("{CLANG} failed to compile {}", failed.join(", "));
    }

    let core = dir.join("js-core.wasm");
    link(&obj, &core)?;

    let mut module = std::fs::read(&core).with_context(|| format!("reading {}", core.display()))?;
    embed_world(&ctx.wit_dir(), &mut module)?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)?
        .adapter(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .validate(true)
        .encode()
        .context("encoding the JavaScript component")?;

    let partial = output.with_extension("wasm.partial");
    std::fs::write(&partial, &component)
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, output).with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}

/// Fails with an install hint unless clang-19, its wasm linker and the
/// wasi-libc sysroot are there.
fn check_toolchain() -> Result<()> {
    for tool in [CLANG, LINKER] {
        match Command::new(tool).arg("--version").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => bail!(
                "`{tool} --version` failed: {}\n{TOOLCHAIN_HINT}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(err) => bail!("cannot run `{tool}`: {err}\n{TOOLCHAIN_HINT}"),
        }
    }
    for needed in [
        "/usr/lib/wasm32-wasi/libc.a",
        "/usr/include/wasm32-wasi/stdio.h",
    ] {
        if !Path::new(needed).exists() {
            bail!("the wasi-libc sysroot is missing ({needed} not found)\n{TOOLCHAIN_HINT}");
        }
    }
    Ok(())
}

/// Copies the sources we compile, every header, and the licence.
fn copy_quickjs(upstream: &Path, dest: &Path) -> Result<()> {
    for entry in
        std::fs::read_dir(upstream).with_context(|| format!("reading {}", upstream.display()))?
    {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".h") || name == "LICENSE" || QUICKJS_SOURCES.contains(&name) {
            std::fs::copy(&path, dest.join(name))
                .with_context(|| format!("copying {}", path.display()))?;
        }
    }
    for name in QUICKJS_SOURCES {
        if !dest.join(name).exists() {
            bail!("{} has no {name}", upstream.display());
        }
    }
    Ok(())
}

/// One exact replacement in a QuickJS-NG source file.
struct Patch {
    what: &'static str,
    from: &'static str,
    to: &'static str,
}

/// QuickJS-NG 0.16.2 switches its stack-overflow check off under WASI: the
/// runtime starts with no stack size, and the limit is never computed.
/// Without the check deep recursion runs off the linear-memory stack and
/// traps, which kills the instance; with it the glue's `JS_SetMaxStackSize`
/// turns it into a catchable RangeError. Both `#if`s go, the code for other
/// platforms stays.
const STACK_CHECK_PATCHES: &[Patch] = &[
    Patch {
        what: "JS_NewRuntime: keep the default stack size under WASI",
        from: concat!(
            "    rt->stack_size = JS_DEFAULT_STACK_SIZE;\n",
            "#ifdef __wasi__\n",
            "    rt->stack_size = 0;\n",
            "#endif\n",
        ),
        to: "    rt->stack_size = JS_DEFAULT_STACK_SIZE;\n",
    },
    Patch {
        what: "update_stack_limit: compute the limit under WASI too",
        from: concat!(
            "static void update_stack_limit(JSRuntime *rt)\n",
            "{\n",
            "#if defined(__wasi__)\n",
            "    rt->stack_limit = 0; /* no limit */\n",
            "#else\n",
            "    if (rt->stack_size == 0) {\n",
            "        rt->stack_limit = 0; /* no limit */\n",
            "    } else {\n",
            "        rt->stack_limit = rt->stack_top - rt->stack_size;\n",
            "    }\n",
            "#endif\n",
            "}\n",
        ),
        to: concat!(
            "static void update_stack_limit(JSRuntime *rt)\n",
            "{\n",
            "    if (rt->stack_size == 0) {\n",
            "        rt->stack_limit = 0; /* no limit */\n",
            "    } else {\n",
            "        rt->stack_limit = rt->stack_top - rt->stack_size;\n",
            "    }\n",
            "}\n",
        ),
    },
];

/// Applies `patches` to `file` in place. Each must match exactly once: a
/// source that changed is an error, never a silent no-op.
fn apply_patches(file: &Path, patches: &[Patch]) -> Result<()> {
    let mut text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    for patch in patches {
        match text.matches(patch.from).count() {
            1 => text = text.replacen(patch.from, patch.to, 1),
            n => bail!(
                "patching {} ({}): expected the original text exactly once, found it {n} times; \
                 the pinned QuickJS-NG sources changed, review the patch",
                file.display(),
                patch.what
            ),
        }
    }
    std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))
}

/// Writes the C bindings of the world into `dir` and returns the `.c` files to
/// compile. The component type is embedded after linking (`embed_world`), so
/// no type object file is generated; the symbol the bindings use to force
/// that object into the link is defined by an empty stub instead.
fn generate_bindings(wit_dir: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    use wit_bindgen_core::wit_parser::Resolve;

    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(wit_dir)
        .with_context(|| format!("parsing the WIT in {}", wit_dir.display()))?;
    let world = resolve.select_world(&[package], Some(WORLD))?;
    let mut files = wit_bindgen_core::Files::default();
    let opts = wit_bindgen_c::Opts {
        no_object_file: true,
        ..Default::default()
    };
    opts.build()
        .generate(&mut resolve, world, &mut files)
        .context("generating the C bindings")?;

    std::fs::create_dir_all(dir)?;
    let mut sources = Vec::new();
    for (name, contents) in files.iter() {
        let path = dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        if name.ends_with(".c") {
            sources.push(path);
        }
    }
    let stub = dir.join("component_type_stub.c");
    std::fs::write(
        &stub,
        format!(
            "/* The component type is embedded after linking: this only satisfies the\n   \
             reference the bindings make to its object file. */\n\
             void __component_type_object_force_link_{WORLD}(void) {{}}\n"
        ),
    )?;
    sources.push(stub);
    Ok(sources)
}

/// Writes `goru_modules.h`: the JS wrapper of each built-in module
/// (`runtimes/src/modules/NAME/NAME.js`), as NUL-terminated byte arrays the
/// glue evaluates on a module's first use.
fn embed_module_wrappers(modules_dir: &Path, header: &Path) -> Result<()> {
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(modules_dir)
        .with_context(|| format!("reading {}", modules_dir.display()))?
    {
        let dir = entry?.path();
        let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let source = dir.join(format!("{name}.js"));
        if source.is_file() {
            // The name becomes a global and a C string: keep it plain.
            if !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                bail!("module folder `{name}` must be named with a-z, 0-9 and _ only");
            }
            let text =
                std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
            modules.push((name, text));
        }
    }
    modules.sort();
    let mut out = String::from(
        "/* Generated by goru-guest-builder from runtimes/src/modules/NAME/NAME.js. */\n",
    );
    for (index, (_, text)) in modules.iter().enumerate() {
        out.push_str(&format!(
            "static const unsigned char goru_module_{index}[] = {{"
        ));
        for (i, byte) in text.iter().chain(std::iter::once(&0)).enumerate() {
            out.push_str(if i % 16 == 0 { "\n   " } else { "" });
            out.push_str(&format!(" {byte},"));
        }
        out.push_str("\n};\n");
    }
    out.push_str(concat!(
        "static const struct {\n",
        "    const char *name;\n",
        "    const char *source;\n",
        "    size_t len;\n",
        "} goru_modules[] = {\n",
    ));
    for (index, (name, text)) in modules.iter().enumerate() {
        out.push_str(&format!(
            "    {{\"{name}\", (const char *)goru_module_{index}, {}}},\n",
            text.len()
        ));
    }
    out.push_str("};\n");
    std::fs::write(header, out).with_context(|| format!("writing {}", header.display()))
}

/// How warnings are treated: ours must compile clean, the rest is not ours to fix.
enum CFlags<'a> {
    ThirdParty,
    Generated,
    Ours(&'a [String]),
}

/// Starts compiling one C file to `obj_dir/<stem>.o`; the caller waits.
fn compile(
    source: &Path,
    obj_dir: &Path,
    includes: &[&Path],
    flags: CFlags,
) -> Result<(PathBuf, Child)> {
    let stem = source.file_stem().context("source without a name")?;
    let object = obj_dir.join(stem).with_extension("o");
    let mut cmd = clang();
    // Bulk memory (memory.copy/fill) and non-trapping float-to-int
    // conversions, both in every wasmtime: measured 5% faster on CPU-bound
    // code and 13% on a fresh sandbox than without (-O3 gained nothing).
    cmd.args([
        "-c",
        "-O2",
        "-D_GNU_SOURCE",
        "-mbulk-memory",
        "-mnontrapping-fptoint",
    ]);
    for include in includes {
        cmd.arg("-I").arg(include);
    }
    match flags {
        CFlags::ThirdParty => {
            cmd.arg("-w");
        }
        CFlags::Generated => {
            cmd.arg("-Wall");
        }
        CFlags::Ours(defines) => {
            cmd.args(["-Wall", "-Wextra", "-Werror", "-std=gnu11"])
                .args(defines);
        }
    }
    cmd.arg("-o").arg(&object).arg(source);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {CLANG}\n{TOOLCHAIN_HINT}"))?;
    Ok((source.to_path_buf(), child))
}

/// Links every object in `obj_dir` into a reactor module.
fn link(obj_dir: &Path, output: &Path) -> Result<()> {
    let mut objects: Vec<PathBuf> = std::fs::read_dir(obj_dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    objects.sort();
    let mut cmd = clang();
    cmd.args(["-mexec-model=reactor", "-Wl,--stack-first"])
        .arg(format!("-Wl,-z,stack-size={LINEAR_STACK_BYTES}"))
        .arg("-o")
        .arg(output)
        .args(&objects);
    pinned::run(&mut cmd).context("linking the JavaScript guest")
}

fn clang() -> Command {
    let mut cmd = Command::new(CLANG);
    cmd.args(["--target=wasm32-wasi", "--sysroot=/usr"]);
    cmd
}

/// Adds the `component-type` custom section that tells wit-component which
/// world the module implements.
fn embed_world(wit_dir: &Path, module: &mut Vec<u8>) -> Result<()> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_dir(wit_dir)
        .with_context(|| format!("parsing the WIT in {}", wit_dir.display()))?;
    let world = resolve.select_world(&[package], Some(WORLD))?;
    wit_component::embed_component_metadata(
        module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .context("embedding the component type")
}
