"""install_pkg: install a Python package into this session's packages.

Works only when the session allows installs (`--allow-install NAME` with
`--packages DIR`), and only for the names it allows; the host resolves,
downloads, checks and unpacks pure-Python wheels (nothing runs on the
host). The package can be imported right after.
"""

import importlib

from goru_host import module_call


def install_pkg(name, spec=""):
    """Installs `name` (a version matching the PEP 440 `spec`, such as
    ">=1.0"; any when empty) with its dependencies. Returns the version
    installed (or already there)."""
    if not isinstance(name, str):
        raise TypeError("install_pkg() name must be a string")
    if not isinstance(spec, str):
        raise TypeError("install_pkg() spec must be a string such as '>=1.0'")
    result = module_call("packages.install", name=name, spec=spec)
    # New files in a directory already on sys.path: drop the finders' caches.
    importlib.invalidate_caches()
    return result["version"]
