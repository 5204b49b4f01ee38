"""goru's Python guest: the app module componentize-py wraps.

It implements the `guest` world of `guests/wit/goru.wit` (the WIT's doc
comments are the contract): `init` once per instance, then `run` any number
of times against one persistent `__main__` namespace.

Everything at module level runs at build time, before componentize-py takes
its snapshot; an instance starts from that snapshot, so work done here is
free at run time, and anything of the build machine that ends up in memory
here ships inside the guest (hence the clean-up in `_forget_build_machine`).
"""

import ast
import builtins
import codeop
import functools
import gc
import linecache
import operator
import os
import posix
import sys
import traceback
import types

import goru_asyncio
import goru_host
import goru_modules
import goru_stdio
import goru_stdlib  # noqa: F401 - imported for its effect: the bundled stdlib
import wit_world
from wit_world import (
    GuestException,
    Mode,
    Outcome_Exception,
    Outcome_Exit,
    Outcome_Incomplete,
    Outcome_Ok,
)

# Frames of these files are ours, not the user's: tracebacks leave them out.
_PRELUDE_FILES = frozenset(
    {__file__, goru_asyncio.__file__, goru_stdio.__file__, goru_host.__file__, *goru_modules.files()}
)


# The highest recursion limit the host's wasm stack survives (64 MiB,
# `MAX_WASM_STACK` in runtimes/src/engine.rs). Unwinding a deep recursion
# frees its chains of frame and traceback objects recursively in C, about
# 230 bytes of wasm stack a level, and CPython's C-stack guard does not see
# that stack (it watches the linear-memory one): measured, 280,000 levels
# unwound and 300,000 trapped, killing the instance. Above this cap, deep
# recursion ends in RecursionError instead.
MAX_RECURSION_LIMIT = 200_000


@functools.wraps(sys.setrecursionlimit)
def _setrecursionlimit(limit, /, _set=sys.setrecursionlimit):
    if isinstance(limit, int) and limit > MAX_RECURSION_LIMIT:
        limit = MAX_RECURSION_LIMIT
    _set(limit)


@functools.wraps(os._exit)
def _os_exit(status, /, _real=os._exit):
    """os._exit through the host, which ends the run with `status` as
    sys.exit would (WASI's own exit can only say 0 or 1, and wasmtime
    reports it as a trap)."""
    code = operator.index(status)  # a TypeError, as os._exit's own
    if -(2**31) <= code < 2**31:
        goru_host.exit_now(code)
    _real(status)  # an OverflowError, as os._exit's own


def _new_main_module():
    """The `__main__` module user code runs in; registered in sys.modules so
    that pickle, dataclasses and typing find what the user defines."""
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    return main


_main = _new_main_module()


# ---------------------------------------------------------------- source


def _is_pseudo_file(filename):
    return filename.startswith("<") and filename.endswith(">")


def _register_source(code, source, filename):
    """Makes tracebacks show `source` for the frames of `code`.

    Per code object (what the 3.13+ REPL does), so a function defined by an
    earlier run still shows its own lines when a later run reuses the
    filename. The traceback module only looks there for `<...>` names; a
    real file name is looked up by name, so it gets the latest run's source.
    """
    linecache._register_code(code, source, filename)
    if not _is_pseudo_file(filename):
        lines = source.splitlines(keepends=True)
        linecache.cache[filename] = (len(source), None, lines, filename)


def _fill_syntax_error_text(error, source):
    """Compiler-stage SyntaxErrors (e.g. `return` outside a function) carry
    no source line, since CPython would read it from a file: supply it."""
    lines = source.splitlines()
    if error.text is None and error.lineno and 0 < error.lineno <= len(lines):
        error.text = lines[error.lineno - 1] + "\n"


def _compile(source, filename, mode="exec", flags=0, *, text):
    """compile() for user code; `text` is the user's source (`source` may be
    an AST of it)."""
    try:
        return compile(source, filename, mode, flags, dont_inherit=True)
    except SyntaxError as error:
        _fill_syntax_error_text(error, text)
        raise


# ---------------------------------------------------------------- running


def _exec(code, filename):
    compiled = _compile(code, filename, text=code)
    _register_source(compiled, code, filename)
    exec(compiled, _main.__dict__)


def _exec_repl(code, filename):
    """Runs a REPL entry; returns the repr of a trailing expression's value
    (kept as `_`, as the interactive interpreter does), or None."""
    tree = _compile(code, filename, "exec", ast.PyCF_ONLY_AST, text=code)
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        _exec(code, filename)
        return None
    *statements, last = tree.body
    head = _compile(ast.Module(statements, type_ignores=[]), filename, text=code)
    tail = _compile(ast.Expression(last.value), filename, "eval", text=code)
    _register_source(head, code, filename)
    _register_source(tail, code, filename)
    exec(head, _main.__dict__)
    value = eval(tail, _main.__dict__)
    if value is None:
        return None
    builtins._ = None  # as sys.displayhook: a failing repr must not leave a stale `_`
    text = repr(value)
    builtins._ = value
    return text


def _check_complete(code, filename):
    """`incomplete` while the interactive interpreter would ask for more lines.

    "single" mode is the interpreter's own rule (a compound statement ends
    with a blank line); when it rejects the entry, "exec" mode tells a
    pasted block of several statements from a real syntax error.
    """
    try:
        try:
            compiled = codeop.compile_command(code, filename, "single")
        except SyntaxError:
            compiled = codeop.compile_command(code, filename, "exec")
    except SyntaxError as error:
        _fill_syntax_error_text(error, code)
        # codeop's frames are not the user's: report it as a bare syntax error.
        raise error.with_traceback(None) from None
    return Outcome_Incomplete() if compiled is None else Outcome_Ok(None)


def _exit_status(code):
    """The exit status CPython gives `SystemExit(code)`; prints a message code."""
    if code is None:
        return 0
    if isinstance(code, int):
        if not -(2**63) <= code < 2**63:
            return -1  # CPython: what does not fit a C long long exits with -1
        return (code + 2**31) % 2**32 - 2**31  # then truncated to a C int
    stream = sys.stderr if sys.stderr is not None else sys.__stderr__
    try:
        print(code, file=stream)
    except Exception:  # noqa: BLE001 - a broken __str__ still means status 1
        pass
    return 1


def _flush_std_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or replaced stream is the user's business
            pass


# ---------------------------------------------------------------- exceptions


def _type_name(exc_type):
    """As the last line of a traceback names it: bare for builtins and
    classes the user defined, `module.qualname` otherwise."""
    module = getattr(exc_type, "__module__", None)
    if module in (None, "builtins", "__main__"):
        return exc_type.__qualname__
    return f"{module}.{exc_type.__qualname__}"


def _safe_str(value):
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - as CPython prints it
        return "<exception str() failed>"


class _StackSummary(traceback.StackSummary):
    """Formats each distinct frame once.

    A deep recursion repeats one frame up to the recursion limit, and 3.14
    formats every repetition (parsing its line for the carets) before
    collapsing them into "[Previous line repeated N more times]": 100 us a
    frame in the guest, 20 s for 200,000 frames.
    """

    def __init__(self, frames):
        super().__init__(frames)
        self._formatted = {}

    def format_frame_summary(self, frame_summary, **kwargs):
        key = (
            frame_summary.filename,
            frame_summary.lineno,
            frame_summary.end_lineno,
            frame_summary.colno,
            frame_summary.end_colno,
            frame_summary.name,
            id(frame_summary._code),
        )
        if key not in self._formatted:
            self._formatted[key] = super().format_frame_summary(frame_summary, **kwargs)
        return self._formatted[key]


def _user_frames(summary, seen):
    """Leaves only the user's frames in a TracebackException and the ones it
    chains to (ours are the prelude's, not the user's)."""
    if summary is None or id(summary) in seen:
        return
    seen.add(id(summary))
    summary.stack = _StackSummary(f for f in summary.stack if f.filename not in _PRELUDE_FILES)
    _user_frames(summary.__cause__, seen)
    _user_frames(summary.__context__, seen)
    for member in summary.exceptions or ():
        _user_frames(member, seen)


def _format_traceback(error):
    """The traceback as CPython would print it, without the prelude's frames."""
    try:
        summary = traceback.TracebackException(
            type(error),
            error,
            error.__traceback__,
            limit=traceback.BUILTIN_EXCEPTION_LIMIT,
            # Source lines are read when formatting, so only for the frames shown.
            lookup_lines=False,
            compact=True,
        )
        _user_frames(summary, set())
        return "".join(summary.format())
    except (MemoryError, RecursionError):
        # Too big to format in full (a huge traceback under a memory cap).
        return "".join(traceback.format_exception_only(error))


def _missing_module_note(error):
    """Why an import failed in goru's Python, and what would work instead."""
    top = (error.name or "").partition(".")[0]
    if not top or top in sys.modules:
        return None
    if top in sys.stdlib_module_names:
        return (
            f"note: `{top}` is part of Python's standard library but not of goru's Python "
            "(CPython on WebAssembly/WASI has no processes, threads, sockets, ssl, ctypes, "
            "terminals or compression libraries beyond zlib); a package that needs it cannot "
            "run here. For HTTP use the `http` module."
        )
    return (
        f"note: no package provides `{top}` here. Install pure-Python packages with "
        "`goru deps install NAME` and run with `--packages .goru/packages`, or call "
        "install_pkg(NAME) in a session that allows it."
    )


def _describe(error):
    if isinstance(error, ModuleNotFoundError):
        note = _missing_module_note(error)
        if note and note not in getattr(error, "__notes__", ()):
            error.add_note(note)
    return GuestException(
        type_name=_type_name(type(error)),
        message=_safe_str(error),
        traceback=_format_traceback(error),
    )


# Returned when even a bare description of an exception could not be made:
# built now, so returning it allocates nothing in Python.
_UNDESCRIBED = Outcome_Exception(
    GuestException(
        type_name="MemoryError",
        message="the exception could not be described within the memory limit",
        traceback="MemoryError: the exception could not be described within the memory limit\n",
    )
)


def _describe_barely(error):
    """The exception's type alone, for when describing it in full failed
    (the memory limit is reached)."""
    try:
        type_name = _type_name(type(error))
        return Outcome_Exception(GuestException(type_name=type_name, message="", traceback=type_name + "\n"))
    except BaseException:  # noqa: BLE001 - nothing may escape `run`
        return _UNDESCRIBED


# ---------------------------------------------------------------- world


def _run(code, mode, filename):
    if mode == Mode.CHECK_COMPLETE:
        return _check_complete(code, filename)
    if mode == Mode.REPL:
        return Outcome_Ok(_exec_repl(code, filename))
    _exec(code, filename)
    return Outcome_Ok(None)


class WitWorld(wit_world.WitWorld):
    def init(self, options):
        sys.argv = list(options.argv) or [""]
        # After the standard library: a package cannot shadow it or goru's own modules.
        sys.path.extend(path for path in options.module_paths if path not in sys.path)
        # The snapshot may hold the build machine's variables; the guest has none.
        os.environ.clear()

    def run(self, code, mode, filename):
        # Nothing may escape: componentize-py answers an exception out of
        # `run` with CPython's error dump ("lost sys.stderr" when stderr
        # fails too) and a Rust panic message on the guest's stderr, then a
        # trap, which reads as a crash of the host. At the memory limit,
        # describing an exception can itself fail.
        try:
            try:
                return _run(code, mode, filename)
            except SystemExit as error:
                return Outcome_Exit(_exit_status(error.code))
            except BaseException as error:  # noqa: BLE001 - everything user code raises is reported
                try:
                    return Outcome_Exception(_describe(error))
                except BaseException:  # noqa: BLE001 - see above
                    return _describe_barely(error)
            finally:
                _flush_std_streams()
        except BaseException:  # noqa: BLE001 - see above
            return _UNDESCRIBED


# ---------------------------------------------------------------- build time


def _warm_up():
    """Takes every path of `run` once, so that what a first run sets up
    (lazy imports, caches, the traceback machinery) is in the snapshot.
    Measured in-process: a fresh instance's first failing run took 2.35 ms
    without this and 1.9 ms with it; a first print(1+1) is unchanged."""
    world = WitWorld()
    world.run("def f():\n    return 1 / 0\nf()\n", Mode.EXEC, "<warm-up>")
    world.run("import asyncio\nasyncio.run(asyncio.sleep(0))\n[1] * 2", Mode.REPL, "<warm-up>")
    world.run("if True:", Mode.CHECK_COMPLETE, "<warm-up>")
    # Leave no trace of it for user code (its `__main__` is replaced after
    # the freeze below).
    del builtins._
    linecache.clearcache()
    linecache._interactive_cache.clear()


def _forget_build_machine():
    """Drops what the build left in memory that the guest must not see."""
    os.environ.clear()


goru_host.install()
goru_modules.install()
sys.setrecursionlimit = _setrecursionlimit
os._exit = posix._exit = _os_exit
goru_stdio.install()
goru_asyncio.install()
_warm_up()
_forget_build_machine()
# Objects that exist now live as long as the instance: keep the garbage
# collector from scanning (and so copying) the snapshot's pages.
gc.freeze()
# The namespace user code fills is created after the freeze, never in it.
# CPython 3.14.0's incremental collector starts each cycle by marking what
# is reachable from the roots and the running frames, and a frozen object
# stops that marking: with a frozen `__main__` dict, nothing a top-level
# script keeps was ever marked, so every cycle's increment dragged the whole
# of it in and collected it again (200,000 small lists appended at top
# level: 7.5 s, quadratic; with this dict outside the freeze: 0.25 s, as
# inside a function). See docs/performance.md, "Top-level allocation".
_main = _new_main_module()
