"""kv: a key-value store private to this session (enable it with `--kv`).

Keys are strings; values anything JSON can hold. Limits on key size, value
size, entries and total bytes are set by the host; going past one raises
ValueError.
"""

from goru_host import module_call, async_module_call

def get(key, default=None):
    """The value stored under `key`, or `default`."""
    found = module_call("kv.get", key=key)
    return found["value"] if found["found"] else default


def set(key, value):  # noqa: A001 - the module's API mirrors a mapping's
    """Stores `value` (anything JSON can hold) under `key`."""
    module_call("kv.set", key=key, value=value)


def delete(key):
    """Removes `key`; returns whether it was there."""
    return module_call("kv.delete", key=key)


def keys(prefix=""):
    """The stored keys that start with `prefix`, sorted."""
    return module_call("kv.keys", prefix=prefix)


async def async_get(key, default=None):
    found = await async_module_call("kv.get", key=key)
    return found["value"] if found["found"] else default


async def async_set(key, value):
    await async_module_call("kv.set", key=key, value=value)
