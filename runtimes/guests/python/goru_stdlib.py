"""The standard library bundled into the guest.

componentize-py snapshots the interpreter after the prelude is imported, and
at run time the stdlib folder it read modules from is gone: only modules
imported here, at build time, exist in the guest. So this imports every
module a sandboxed program may reasonably use that works under WASI,
including the submodules and codecs that stdlib code imports lazily inside
functions (e.g. `bytes.decode("cp1252")` imports `encodings.cp1252`).

Left out on purpose: what cannot work without processes, threads, a terminal
or a display (multiprocessing, concurrent.futures.process, curses, tkinter,
turtle, idlelib, pty, tty, readline), tools for developing CPython itself
(ensurepip, venv, lib2to3, pydoc and its data), servers (http.server,
socketserver, xmlrpc.server, wsgiref.simple_server) and modules whose C part
is not in this CPython build (bz2, lzma, ssl, ctypes, dbm.gnu, dbm.ndbm).

A module of the list that fails to import is skipped and named in
`UNAVAILABLE` (inspect it in the guest to see what the build lacks).
"""

import importlib

# Grouped by topic; a package's submodules are listed when the package
# imports them lazily.
MODULES = """
    abc annotationlib ast builtins collections collections.abc contextlib
    contextvars copy copyreg dataclasses enum functools gc inspect itertools
    keyword numbers operator reprlib sys types typing
    warnings weakref atexit

    math cmath decimal fractions random statistics secrets

    string string.templatelib re textwrap unicodedata difflib stringprep
    codecs encodings encodings.idna encodings.punycode

    struct array bisect heapq queue graphlib pprint

    datetime time calendar zoneinfo locale

    json csv tomllib configparser plistlib netrc base64 binascii quopri
    pickle pickletools shelve marshal copyreg

    zlib gzip zipfile tarfile compression compression.zlib compression.gzip
    compression.zstd zipimport

    hashlib hmac uuid

    io os os.path pathlib glob fnmatch shutil tempfile filecmp fileinput
    stat linecache mimetypes

    logging logging.config logging.handlers argparse optparse getopt shlex
    sched signal errno platform sysconfig getpass

    threading asyncio selectors socket subprocess

    html html.parser html.entities xml xml.etree.ElementTree
    xml.etree.ElementPath xml.dom xml.dom.minidom xml.dom.pulldom
    xml.sax xml.sax.handler xml.sax.saxutils xml.parsers.expat

    email email.message email.parser email.policy email.utils email.header
    email.charset email.encoders email.generator email.headerregistry
    email.contentmanager email.feedparser email.iterators
    email.mime.text email.mime.multipart email.mime.base
    email.mime.application email.mime.image email.mime.audio
    email.mime.message email.mime.nonmultipart mailbox

    urllib urllib.parse urllib.error urllib.request urllib.response
    urllib.robotparser http http.client http.cookies http.cookiejar
    ipaddress

    sqlite3 dbm dbm.dumb dbm.sqlite3

    traceback tokenize token dis code codeop symtable pyclbr py_compile
    compileall importlib importlib.util importlib.machinery
    importlib.resources importlib.metadata runpy pkgutil modulefinder
    tracemalloc timeit cProfile profile pstats trace bdb pdb cmd
    rlcompleter

    unittest unittest.mock doctest

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
    """Every codec module of the `encodings` package (the charmap tables)."""
    import encodings
    import pkgutil

    return [
        f"encodings.{info.name}"
        for info in pkgutil.iter_modules(encodings.__path__)
        if info.name not in ("mbcs", "oem", "_win_cp_codecs")
    ]


UNAVAILABLE = _import_all(MODULES + _all_codecs())
