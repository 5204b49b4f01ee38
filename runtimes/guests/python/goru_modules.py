"""goru's built-in modules, installed as globals without an import.

Each module's Python side lives beside its host code
(`runtimes/src/modules/<name>/<name>.py`); the guest builder stages it as
`goru_mod_<name>.py`. A module is always present; whether a session may use
it is decided by the host on every call, which raises PermissionError naming
the option that enables it.
"""

import builtins
import importlib

MODULES = ("kv", "fs", "http")
# Functions a module installs as globals of their own (no module global).
FUNCTIONS = {"install_pkg": "packages"}

_loaded = [importlib.import_module(f"goru_mod_{name}") for name in MODULES]
_function_modules = {
    function: importlib.import_module(f"goru_mod_{module}")
    for function, module in FUNCTIONS.items()
}


def files():
    """The modules' source files: their frames are left out of tracebacks."""
    return [module.__file__ for module in _loaded + list(_function_modules.values())]


def install():
    for name, module in zip(MODULES, _loaded):
        setattr(builtins, name, module)
    for function, module in _function_modules.items():
        setattr(builtins, function, getattr(module, function))
