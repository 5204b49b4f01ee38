"""http: requests to the hosts this sandbox allows.

Enable it by allowing hosts: `--allow-host https://api.example.com` on the
command line (repeatable; `https://*.example.com` allows subdomains,
`http://127.0.0.1:8080` a local port), or the `http` capability.

    r = http.get("https://api.example.com/items", params={"q": "x"})
    r.status_code, r.ok, r.headers.get("content-type"), r.json()
    http.post(url, json={"a": 1}); http.put(url, data=b"..."); http.delete(url)
    await asyncio.gather(http.async_get(a), http.async_get(b))  # concurrently

Every request, and every redirect it follows, must go to an allowed host;
addresses on the local network are refused unless allowed literally. Bodies
are bytes-safe both ways. Errors: PermissionError (host not allowed),
TimeoutError, ConnectionError, ValueError (a size limit, a bad URL or header).
A 4xx or 5xx answer is not an error: check `ok` or call `raise_for_status()`.

(Note: `import http` gives the standard library's `http` package instead.)
"""

import base64 as _base64
import collections.abc as _abc
import json as _json
import math as _math
import urllib.parse as _urlparse

from goru_host import async_module_call as _async_call
from goru_host import module_call as _call

__all__ = [
    "HTTPError",
    "Headers",
    "Response",
    "async_delete",
    "async_get",
    "async_patch",
    "async_post",
    "async_put",
    "async_request",
    "delete",
    "get",
    "patch",
    "post",
    "put",
    "request",
]


class HTTPError(OSError):
    """Raised by `Response.raise_for_status()` for a 4xx or 5xx answer."""

    def __init__(self, message, response=None):
        super().__init__(message)
        self.response = response


class Headers(_abc.Mapping):
    """Response headers: a read-only mapping whose keys ignore case.

    A header sent several times (`Set-Cookie`) keeps every value:
    `headers[name]` and `get(name)` give the first, `get_all(name)` all of
    them in the order received, and `items()` every (name, value) pair,
    grouped by name.
    """

    def __init__(self, pairs=()):
        self._pairs = [(str(name), str(value)) for name, value in pairs]

    def __getitem__(self, name):
        wanted = name.lower()
        for key, value in self._pairs:
            if key.lower() == wanted:
                return value
        raise KeyError(name)

    def get_all(self, name):
        """Every value of the header `name`, in order ([] when absent)."""
        wanted = name.lower()
        return [value for key, value in self._pairs if key.lower() == wanted]

    def __contains__(self, name):
        return isinstance(name, str) and any(key.lower() == name.lower() for key, _ in self._pairs)

    def __iter__(self):
        seen = set()
        for key, _ in self._pairs:
            if key.lower() not in seen:
                seen.add(key.lower())
                yield key

    def __len__(self):
        return len({key.lower() for key, _ in self._pairs})

    def items(self):
        """Every (name, value) pair, repeated headers included."""
        return list(self._pairs)

    def __repr__(self):
        return f"Headers({self._pairs!r})"


class Response:
    """An HTTP answer: `status_code`, `ok`, `url` (after redirects),
    `headers`, `content` (bytes), `text`, `json()`."""

    def __init__(self, raw):
        self.status_code = raw["status"]
        self.url = raw["url"]
        self.headers = Headers(raw["headers"])
        self.content = _base64.b64decode(raw["body_base64"])

    @property
    def ok(self):
        """Whether the status is 2xx."""
        return 200 <= self.status_code < 300

    @property
    def encoding(self):
        """The charset the Content-Type names, else "utf-8"."""
        content_type = self.headers.get("content-type", "")
        for param in content_type.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "charset" and value:
                return value.strip().strip('"')
        return "utf-8"

    @property
    def text(self):
        """The body decoded with `encoding` (undecodable bytes replaced)."""
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON."""
        return _json.loads(self.content)

    def raise_for_status(self):
        """Raises HTTPError unless the status is 2xx or 3xx."""
        if self.status_code >= 400:
            raise HTTPError(f"{self.status_code} for url {self.url}", response=self)

    def __repr__(self):
        return f"<Response [{self.status_code}]>"


def _header_pairs(headers):
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, _abc.Mapping) else headers
    result = []
    for pair in pairs:
        name, value = pair
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"header names and values must be str, not {name!r}: {value!r}")
        result.append([name, value])
    return result


def _has_header(pairs, name):
    return any(key.lower() == name for key, _ in pairs)


def _arguments(method, url, params, headers, data, json, timeout):
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, not {type(method).__name__}")
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    if params:
        query = _urlparse.urlencode(params, doseq=True)
        base, _, fragment = url.partition("#")
        url = base + ("&" if "?" in base else "?") + query + ("#" + fragment if fragment else "")
    pairs = _header_pairs(headers)
    if data is not None and json is not None:
        raise TypeError("give `data` or `json`, not both")
    body = None
    if json is not None:
        body = _json.dumps(json, allow_nan=False).encode()
        if not _has_header(pairs, "content-type"):
            pairs.append(["Content-Type", "application/json"])
    elif isinstance(data, str):
        body = data.encode()
    elif isinstance(data, (bytes, bytearray, memoryview)):
        body = bytes(data)
    elif isinstance(data, (_abc.Mapping, list, tuple)):
        body = _urlparse.urlencode(data, doseq=True).encode()
        if not _has_header(pairs, "content-type"):
            pairs.append(["Content-Type", "application/x-www-form-urlencoded"])
    elif data is not None:
        raise TypeError(f"data must be str, bytes or a dict, not {type(data).__name__}")
    args = {"method": method, "url": url, "headers": pairs}
    if body is not None:
        args["body_base64"] = _base64.b64encode(body).decode("ascii")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        # The host caps it at the sandbox's own per-request timeout.
        ms = timeout * 1000
        args["timeout_ms"] = max(1, _math.ceil(ms)) if ms < 2**53 else 2**53
    return args


def request(method, url, *, params=None, headers=None, data=None, json=None, timeout=None):
    """Sends a request and returns its Response.

    `params`: query parameters (a dict or pairs); `headers`: a dict or
    (name, value) pairs; `data`: the body as str (UTF-8), bytes, or a dict
    (form-encoded); `json`: a value sent as JSON; `timeout`: seconds, at most
    the sandbox's per-request timeout.
    """
    return Response(_call("http.request", **_arguments(method, url, params, headers, data, json, timeout)))


def get(url, **kwargs):
    return request("GET", url, **kwargs)


def post(url, **kwargs):
    return request("POST", url, **kwargs)


def put(url, **kwargs):
    return request("PUT", url, **kwargs)


def patch(url, **kwargs):
    return request("PATCH", url, **kwargs)


def delete(url, **kwargs):
    return request("DELETE", url, **kwargs)


async def async_request(method, url, *, params=None, headers=None, data=None, json=None, timeout=None):
    """`request` as a coroutine: requests awaited together (`asyncio.gather`)
    reach the host as one batch and run concurrently."""
    args = _arguments(method, url, params, headers, data, json, timeout)
    return Response(await _async_call("http.request", **args))


async def async_get(url, **kwargs):
    return await async_request("GET", url, **kwargs)


async def async_post(url, **kwargs):
    return await async_request("POST", url, **kwargs)


async def async_put(url, **kwargs):
    return await async_request("PUT", url, **kwargs)


async def async_patch(url, **kwargs):
    return await async_request("PATCH", url, **kwargs)


async def async_delete(url, **kwargs):
    return await async_request("DELETE", url, **kwargs)
