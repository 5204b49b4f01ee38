"""The standard library bundled into the guest.

componentize-py snapshots the interpreter after the prelude is imported, and
at run time the stdlib folder it read modules from is gone: only modules
imported here, at build time, exist in the guest. So this imports every
module a sandboxed program may reasonably use that works under WASI,
including the ones stdlib code imports lazily inside functions:
`datetime.strptime` needs `_strptime`, `ast.unparse` `_ast_unparse`,
`bytes.decode("cp1252")` `encodings.cp1252`, `xml.dom.minidom.parseString`
`xml.dom.expatbuilder`, and so on.

Cost, measured: the prelude alone gives a 21.7 MB component, this list
32.0 MB; importing every module of the stdlib that imports (468 of them)
36.5 MB. Instantiation and a first run take the same time in all three
(the snapshot's pages are mapped copy-on-write, touched only when used).

Left out on purpose: what needs processes, a terminal, a display or a
socket server (multiprocessing, concurrent.futures.process, curses,
readline, tkinter, turtle, idlelib, pty, tty, http.server, socketserver,
xmlrpc.server, wsgiref.simple_server), mail and FTP clients (the guest has
no network), CPython's own tooling (ensurepip, venv, pydoc and its topics,
so `help()` does not work), deprecated aliases (sre_*) and the pure-Python
fallbacks of C modules (_pydecimal, _pydatetime, _pyio).

Not in this CPython build, so not importable at all: bz2, lzma,
compression.bz2/lzma/zstd, ssl, ctypes, dbm.gnu, dbm.ndbm, mmap, termios.
A module of the list that fails to import is skipped and named in
`UNAVAILABLE` (inspect it in the guest to see what a build lacks).
"""

import importlib
import pkgutil

# Grouped by topic.
MODULES = """
    abc annotationlib ast _ast_unparse builtins collections collections.abc
    contextlib contextvars copy copyreg dataclasses enum functools gc inspect
    itertools keyword numbers operator reprlib sys types typing warnings
    weakref atexit

    math cmath decimal fractions random statistics secrets _pylong

    string string.templatelib re textwrap unicodedata difflib stringprep
    codecs encodings

    struct array bisect heapq queue graphlib pprint

    datetime _strptime time calendar zoneinfo locale

    json csv tomllib configparser plistlib netrc base64 binascii quopri
    pickle pickletools shelve marshal

    zlib gzip zipfile tarfile compression compression.zlib compression.gzip
    zipimport

    hashlib hmac uuid

    io os os.path pathlib pathlib.types glob fnmatch shutil tempfile filecmp
    fileinput stat linecache mimetypes

    logging logging.config logging.handlers argparse optparse getopt shlex
    sched signal errno platform sysconfig getpass

    threading concurrent.futures concurrent.futures.thread asyncio selectors
    socket subprocess

    html html.parser html.entities xml xml.etree.ElementTree
    xml.etree.ElementPath xml.etree.ElementInclude xml.dom xml.dom.minidom
    xml.dom.pulldom xml.dom.expatbuilder xml.sax xml.sax.handler
    xml.sax.saxutils xml.sax.expatreader xml.parsers.expat

    email email.message email.parser email.policy email.utils email.header
    email.charset email.encoders email.generator email.headerregistry
    email.contentmanager email.feedparser email.iterators
    email.mime.text email.mime.multipart email.mime.base
    email.mime.application email.mime.image email.mime.audio
    email.mime.message email.mime.nonmultipart mailbox

    urllib urllib.parse urllib.error urllib.request urllib.response
    urllib.robotparser http http.client http.cookies http.cookiejar
    ipaddress wsgiref.headers wsgiref.util

    sqlite3 sqlite3.dump dbm dbm.dumb dbm.sqlite3

    traceback tokenize token dis code codeop symtable pyclbr py_compile
    compileall runpy pkgutil modulefinder importlib importlib.util
    importlib.machinery importlib.readers importlib.resources
    importlib.resources.readers importlib.metadata
    importlib.metadata._adapters importlib.metadata._text
    tracemalloc timeit cProfile profile pstats trace bdb pdb cmd rlcompleter

    unittest unittest.mock unittest.async_case unittest._log doctest

    colorsys wave
""".split()


def _import_all(names):
    """Imports each of `names`; returns those that failed, with the reason."""
    failed = {}
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - any failure means "not available"
            failed[name] = f"{type(error).__name__}: {error}"
    return failed


def _all_codecs():
    """Every codec module of the `encodings` package (cheap: together they
    made no measurable difference to the component's size)."""
    import encodings

    windows_only = ("mbcs", "oem", "_win_cp_codecs")
    return [
        f"encodings.{info.name}"
        for info in pkgutil.iter_modules(encodings.__path__)
        if info.name not in windows_only
    ]


# Packages whose every submodule is bundled: installed packages (goru deps)
# reach into them lazily, e.g. certifi and tzdata through
# `importlib.resources` (which needs `importlib.resources._adapters` and
# `zipfile._path`), version lookups through `importlib.metadata`.
WHOLE_PACKAGES = ("importlib", "zipfile", "json", "email", "collections")


def _submodules(packages):
    names = []
    for name in packages:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            names.append(info.name)
    return names


UNAVAILABLE = _import_all(MODULES + _all_codecs() + _submodules(WHOLE_PACKAGES))
