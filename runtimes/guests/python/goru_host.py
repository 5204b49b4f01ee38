"""Calls from guest code to the host: `call`, `async_call`, and the calls of
goru's built-in modules (`kv`, ...).

Every call goes through the `host` import of the WIT world. `async_call`
does not call at once: it leaves the call pending, and the event loop sends
every pending call as ONE `call-batch` when all tasks are waiting (see
goru_asyncio), so `asyncio.gather` over host calls costs one round trip and
the host may run them concurrently.
"""

import asyncio
import builtins
import json

from componentize_py_types import Err, Ok
from wit_world.imports import host

# Exceptions a built-in module may ask for by name; anything else becomes a
# RuntimeError, so the host cannot make the guest raise arbitrary types.
_MODULE_EXCEPTIONS = {
    cls.__name__: cls
    for cls in (
        AttributeError,
        ConnectionError,
        FileExistsError,
        FileNotFoundError,
        IsADirectoryError,
        KeyError,
        MemoryError,
        NotADirectoryError,
        OSError,
        PermissionError,
        RuntimeError,
        TimeoutError,
        TypeError,
        ValueError,
    )
}

_MODULE_PREFIX = "goru:"


def _encode(name, kwargs):
    if not isinstance(name, str):
        raise TypeError(f"host function name must be a str, not {type(name).__name__}")
    try:
        return json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"arguments of host function {name!r} are not JSON-serializable: {error}") from None


def _user_error(message):
    return RuntimeError(message)


def _module_error(message):
    try:
        error = json.loads(message)
        cls = _MODULE_EXCEPTIONS.get(error["type"], RuntimeError)
        return cls(error["message"])
    except (ValueError, KeyError, TypeError):
        return RuntimeError(message)


def _result(name, outcome, to_error):
    """The decoded value of a host reply, or the exception to raise."""
    if isinstance(outcome, Err):
        return to_error(outcome.value)
    return json.loads(outcome.value if isinstance(outcome, Ok) else outcome)


def call(name, /, **kwargs):
    """Calls the host function `name` with keyword arguments; returns its
    JSON-decoded result. A host error raises RuntimeError with its message."""
    if isinstance(name, str) and name.startswith(_MODULE_PREFIX):
        raise ValueError(f"{name!r} is reserved for goru's built-in modules")
    args = _encode(name, kwargs)
    try:
        return json.loads(host.call(name, args))
    except Err as error:
        raise _user_error(error.value) from None


def module_call(name, /, **kwargs):
    """Calls a built-in module function (`kv.get`); its errors raise the
    exception type the module names."""
    try:
        return json.loads(host.call(_MODULE_PREFIX + name, _encode(name, kwargs)))
    except Err as error:
        raise _module_error(error.value) from None


# Calls made with async_call and not yet sent: (name, args_json, future, to_error).
_pending = []


def async_call(name, /, **kwargs):
    """Like `call`, but returns an awaitable. Calls awaited together
    (`asyncio.gather`) reach the host as one batch and run concurrently."""
    if isinstance(name, str) and name.startswith(_MODULE_PREFIX):
        raise ValueError(f"{name!r} is reserved for goru's built-in modules")
    args = _encode(name, kwargs)
    future = asyncio.get_running_loop().create_future()
    _pending.append((name, args, future, _user_error))
    return future


def async_module_call(name, /, **kwargs):
    """`module_call` as an awaitable, batched like `async_call`."""
    args = _encode(name, kwargs)
    future = asyncio.get_running_loop().create_future()
    _pending.append((_MODULE_PREFIX + name, args, future, _module_error))
    return future


def has_pending():
    return bool(_pending)


def flush_pending():
    """Sends every pending async call as one batch and settles their futures."""
    batch = _pending[:]
    _pending.clear()
    live = [entry for entry in batch if not entry[2].done()]
    if not live:
        return
    try:
        outcomes = host.call_batch([(name, args) for name, args, _, _ in live])
    except Err as error:  # the batch itself was refused
        outcomes = [error] * len(live)
    for (name, _, future, to_error), outcome in zip(live, outcomes):
        if future.done():  # cancelled while in flight
            continue
        try:
            value = _result(name, outcome, to_error)
        except ValueError as error:  # undecodable JSON from the host
            value = RuntimeError(f"host function {name!r} returned invalid JSON: {error}")
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)


# Ends the run at once; the host answers it with the exit (see `exit_now`).
_EXIT = _MODULE_PREFIX + "exit"


def exit_now(status):
    """Ends the run with exit code `status` (an int that fits a C int) at
    once, as `os._exit` ends a process: the host stops the instance inside
    this call, so no `finally` clause or handler runs after it."""
    host.call(_EXIT, json.dumps(status))


def install():
    builtins.call = call
    builtins.async_call = async_call
