"""A small client for goru-daemon, standard library only (Python 3.9+).

The daemon speaks JSON-RPC 2.0 framed as LSP frames it
(``Content-Length: N\\r\\n\\r\\n`` then N bytes of JSON), over a Unix socket
or over its stdio. Besides answering our requests, the daemon sends us
``host/call`` requests (guest code calling a host function this client
serves) and ``run/output`` notifications (output of a streaming run), so a
reader thread takes every incoming message: responses complete the waiting
call, host calls run on a thread pool (several may be outstanding at once),
and output goes to the run's callback.

    from goru_client import Client

    def add(a, b):
        return a + b

    with Client.connect("/tmp/goru.sock", host_functions={"add": add}) as client:
        session = client.create_session("python")
        result = client.run(session, 'print(call("add", a=2, b=3))')
        print(result["stdout"])  # 5
"""

import json
import secrets
import socket
import subprocess
import threading
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["Client", "GoruError", "PROTOCOL_VERSION", "codes"]

PROTOCOL_VERSION = 1


class codes:
    """The daemon's JSON-RPC error codes (protocol/src/codes.rs)."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    UNKNOWN_SESSION = -32001
    NOT_INITIALIZED = -32002
    SESSION_BUSY = -32003
    LIMIT_EXCEEDED = -32004
    CLIENT_ID_IN_USE = -32005
    UNSUPPORTED_PROTOCOL_VERSION = -32006
    ALREADY_INITIALIZED = -32007
    SANDBOX_START_FAILED = -32008
    REQUEST_CANCELLED = -32800
    # What this client answers a host call that failed with.
    HOST_FUNCTION_FAILED = -32000


class GoruError(Exception):
    """A JSON-RPC error from the daemon, or a connection that ended."""

    def __init__(self, code, message, data=None):
        super().__init__("%s (code %d)" % (message, code))
        self.code = code
        self.message = message
        self.data = data


# Not a daemon code: the connection closed before the answer came.
CONNECTION_CLOSED = -32099


class Client:
    """One connection to goru-daemon. Thread-safe: calls may be made from
    several threads at once (each waits for its own answer)."""

    def __init__(self, reader, writer, closer, client_id=None, host_functions=None,
                 on_output=None, client_info=None, max_host_workers=16, process=None):
        """Use :meth:`connect` or :meth:`spawn` rather than this."""
        self._reader = reader
        self._writer = writer
        self._closer = closer
        self._process = process
        self._host_functions = dict(host_functions or {})
        self._on_output = on_output
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._next_id = 0
        self._pending = {}  # id -> (Future, on_output)
        self._closed = None  # the GoruError pending calls get once the connection ends
        self._pool = ThreadPoolExecutor(max_workers=max_host_workers,
                                        thread_name_prefix="goru-host")
        self.client_id = client_id or secrets.token_hex(16)
        self._thread = threading.Thread(target=self._read_loop, name="goru-reader", daemon=True)
        self._thread.start()
        params = {
            "clientId": self.client_id,
            "protocolVersion": PROTOCOL_VERSION,
            "hostFunctions": sorted(self._host_functions),
            "clientInfo": client_info or {"name": "goru_client.py"},
        }
        try:
            #: The ``initialize`` result: serverInfo, languages, limits, and
            #: this client id's sessions left from an earlier connection.
            self.server = self.request("initialize", params)
        except BaseException:
            self._shut(None)
            raise

    @classmethod
    def connect(cls, socket_path, client_id=None, host_functions=None, **options):
        """Connects to a daemon listening on a Unix socket (``goru-daemon
        --socket PATH``) and initializes the connection.

        ``host_functions`` maps names to callables the guest can ``call``;
        ``client_id`` (random by default) is what sessions belong to: a
        client reconnecting with the same id finds its sessions again.
        Other options: ``on_output(params)`` for streamed output of every
        run, ``client_info`` ({"name", "version"}), ``max_host_workers``."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(socket_path)
        except BaseException:
            sock.close()
            raise
        reader = sock.makefile("rb")

        def closer():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

        return cls(reader, sock.sendall, closer, client_id=client_id,
                   host_functions=host_functions, **options)

    @classmethod
    def spawn(cls, argv, client_id=None, host_functions=None, **options):
        """Starts a daemon as a child speaking on its stdio (e.g.
        ``["goru-daemon", "--stdio"]``) and connects to it. Its stderr
        (logs) goes to ours. :meth:`close` waits for it to exit."""
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

        def write(data):
            process.stdin.write(data)
            process.stdin.flush()

        def closer():
            # The daemon ends at the end of its stdin; the reader then sees
            # the end of its stdout.
            try:
                process.stdin.close()
            except OSError:
                pass

        try:
            return cls(process.stdout, write, closer, client_id=client_id,
                       host_functions=host_functions, process=process, **options)
        except BaseException:
            process.kill()
            process.wait()
            raise

    # -- the methods -------------------------------------------------------

    def create_session(self, language, capabilities=None, limits=None, argv=None):
        """Creates a session ("python" or "javascript"); returns its id."""
        params = {"language": language}
        if capabilities is not None:
            params["capabilities"] = capabilities
        if limits is not None:
            params["limits"] = limits
        if argv is not None:
            params["argv"] = argv
        return self.request("session/create", params)["sessionId"]

    def run(self, session_id, code, mode="exec", stream=False, on_output=None, filename=None):
        """Runs code in a session; returns the RunResult dict (``outcome``,
        ``stdout``, ``stderr``, ``value``, ``exception``, ``exitCode``, ...).

        With ``stream=True`` the output comes as it is written, to
        ``on_output(params)`` (``params["stream"]`` is "stdout" or "stderr",
        ``params["data"]`` the text), and the result's stdout/stderr are empty."""
        params = {"sessionId": session_id, "code": code, "mode": mode, "stream": bool(stream)}
        if filename is not None:
            params["filename"] = filename
        return self.request("session/run", params, on_output=on_output)

    def close_session(self, session_id):
        self.request("session/close", {"sessionId": session_id})

    def list_sessions(self):
        """This client's live sessions: dicts with sessionId, language, busy, runs, idleMs."""
        return self.request("session/list")["sessions"]

    def run_once(self, language, code, capabilities=None, limits=None, stream=False,
                 on_output=None, filename=None, argv=None):
        """Runs code in a fresh sandbox thrown away afterwards; returns the RunResult."""
        params = {"language": language, "code": code, "stream": bool(stream)}
        for key, value in (("capabilities", capabilities), ("limits", limits),
                           ("filename", filename), ("argv", argv)):
            if value is not None:
                params[key] = value
        return self.request("run", params, on_output=on_output)

    def close(self):
        """Says goodbye (``shutdown``, then the ``exit`` notification) and
        closes the connection; the daemon then closes this client's sessions.
        (A connection that just drops leaves them alive for the daemon's
        reconnect grace period, for a client reconnecting with the same id.)"""
        if self._closed is None:
            try:
                self.request("shutdown")
                self.notify("exit")
            except (GoruError, OSError, ValueError):
                pass
        self._shut(None)
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- JSON-RPC ------------------------------------------------------------

    def request(self, method, params=None, on_output=None, timeout=None):
        """Sends any request and waits for its result; a JSON-RPC error
        raises :class:`GoruError`."""
        future = Future()
        with self._lock:
            if self._closed is not None:
                raise GoruError(self._closed.code, self._closed.message)
            self._next_id += 1
            request_id = self._next_id
            self._pending[request_id] = (future, on_output)
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            self._send(message)
        except BaseException:
            with self._lock:
                self._pending.pop(request_id, None)
            raise
        return future.result(timeout)

    def notify(self, method, params=None):
        message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)

    def _send(self, message):
        self._write(_encode(message))

    def _write(self, frame):
        with self._write_lock:
            self._writer(frame)

    def _read_frame(self):
        """One frame's body, or None at the end of the stream."""
        length = None
        seen_header = False
        while True:
            line = self._reader.readline(4096)
            if not line:
                if seen_header:
                    raise GoruError(CONNECTION_CLOSED, "the stream ended in the middle of a frame")
                return None
            line = line.rstrip(b"\r\n")
            if not line:
                if seen_header:
                    break
                continue  # blank lines between frames
            seen_header = True
            name, sep, value = line.partition(b":")
            if not sep:
                raise GoruError(CONNECTION_CLOSED, "bad frame header %r" % line[:64])
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None:
            raise GoruError(CONNECTION_CLOSED, "a frame without Content-Length")
        body = b""
        while len(body) < length:
            chunk = self._reader.read(length - len(body))
            if not chunk:
                raise GoruError(CONNECTION_CLOSED, "the stream ended in the middle of a frame")
            body += chunk
        return body

    def _read_loop(self):
        error = GoruError(CONNECTION_CLOSED, "the daemon closed the connection")
        try:
            while True:
                body = self._read_frame()
                if body is None:
                    break
                self._dispatch(json.loads(body.decode("utf-8")))
        except GoruError as err:
            error = err
        except (OSError, ValueError) as err:
            if self._closed is None:
                error = GoruError(CONNECTION_CLOSED, "reading from the daemon failed: %s" % err)
        self._shut(error)

    def _dispatch(self, message):
        if not isinstance(message, dict):
            return
        method = message.get("method")
        if method is None:  # a response
            with self._lock:
                entry = self._pending.pop(message.get("id"), None)
            if entry is None:
                return
            future = entry[0]
            if "error" in message:
                error = message["error"] or {}
                future.set_exception(GoruError(error.get("code", 0), error.get("message", ""),
                                               error.get("data")))
            else:
                future.set_result(message.get("result"))
        elif "id" in message:  # a request from the daemon
            if method == "host/call":
                self._pool.submit(self._serve_host_call, message["id"], message.get("params") or {})
            else:
                self._reply_error(message["id"], codes.METHOD_NOT_FOUND,
                                  "this client has no method `%s`" % method)
        elif method == "run/output":
            params = message.get("params") or {}
            with self._lock:
                entry = self._pending.get(params.get("requestId"))
            callback = (entry[1] if entry else None) or self._on_output
            if callback is not None:
                try:
                    callback(params)
                except Exception:  # a faulty callback must not stop the reader
                    pass

    def _serve_host_call(self, request_id, params):
        name = params.get("name")
        function = self._host_functions.get(name)
        if function is None:
            self._reply_error(request_id, codes.METHOD_NOT_FOUND,
                              "no host function named %r" % (name,))
            return
        args = params.get("args")
        try:
            if isinstance(args, dict):
                result = function(**args)
            elif args is None:
                result = function()
            else:
                result = function(args)
        except Exception as err:
            self._reply_error(request_id, codes.HOST_FUNCTION_FAILED, str(err) or type(err).__name__)
            return
        try:
            frame = _encode({"jsonrpc": "2.0", "id": request_id, "result": result})
        except (TypeError, ValueError) as err:
            self._reply_error(request_id, codes.HOST_FUNCTION_FAILED,
                              "host function %r returned a value that is not JSON: %s" % (name, err))
            return
        try:
            self._write(frame)
        except (OSError, ValueError):
            pass  # the connection is gone: nobody to answer

    def _reply_error(self, request_id, code, message):
        try:
            self._send({"jsonrpc": "2.0", "id": request_id,
                        "error": {"code": code, "message": message}})
        except (OSError, ValueError):
            pass

    def _shut(self, error):
        with self._lock:
            if self._closed is None:
                self._closed = error or GoruError(CONNECTION_CLOSED, "the client is closed")
            pending, self._pending = self._pending, {}
            error = self._closed
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(GoruError(error.code, error.message))
        if threading.current_thread() is not self._thread:
            self._closer()
            self._thread.join(timeout=5)
            self._pool.shutdown(wait=False)


def _encode(message):
    """One frame carrying ``message`` (ASCII JSON, so length = characters)."""
    body = json.dumps(message, separators=(",", ":")).encode("ascii")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body
