"""Checks goru_client.py against a running daemon:

    goru-daemon --socket /tmp/goru.sock &
    python3 client/python/test_client.py /tmp/goru.sock   # or GORU_SOCKET=/tmp/goru.sock

Prints "ok" and exits 0 when every check passes; exits 1 naming the first
that failed.
"""

import os
import sys
import threading
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from goru_client import Client, GoruError, codes  # noqa: E402


def add(a, b):
    return a + b


def fail():
    raise ValueError("nope")


# Two gathered calls meet here: served one after the other, the first would
# wait for the second forever (until the timeout breaks the barrier).
meeting = threading.Barrier(2, timeout=20)


def rendezvous(id):
    meeting.wait()
    return id


def expect(condition, what, got=None):
    if not condition:
        raise AssertionError(what + ("" if got is None else ": got %r" % (got,)))


def expect_ok(result, stdout, what):
    expect(result.get("outcome") == "ok" and result.get("stdout") == stdout,
           "%s: expected outcome ok and stdout %r" % (what, stdout), result)


def check(socket_path):
    functions = {"add": add, "fail": fail, "rendezvous": rendezvous}
    with Client.connect(socket_path, host_functions=functions) as client:
        expect(client.server.get("protocolVersion") == 1, "initialize: protocolVersion 1",
               client.server)

        python = client.create_session("python")
        result = client.run(python, 'print(call("add", a=2, b=3))')
        expect_ok(result, "5\n", "a Python host call")

        expect_ok(client.run(python, "x = 41"), "", "Python: x = 41")
        expect_ok(client.run(python, "print(x + 1)"), "42\n", "Python: state across runs")

        result = client.run(python, 'call("fail")')
        expect(result.get("outcome") == "exception"
               and "nope" in (result.get("exception") or {}).get("message", ""),
               "a failing host function: expected outcome exception with 'nope'", result)

        code = ("import asyncio\n"
                "async def main():\n"
                "    return await asyncio.gather(async_call('rendezvous', id=1),"
                " async_call('rendezvous', id=2))\n"
                "print(asyncio.run(main()))\n")
        expect_ok(client.run(python, code), "[1, 2]\n", "two gathered host calls served at once")

        chunks = []
        result = client.run(python, 'import sys\nprint("out")\nprint("err", file=sys.stderr)',
                            stream=True, on_output=chunks.append)
        streamed = {
            name: "".join(c["data"] for c in chunks if c.get("stream") == name)
            for name in ("stdout", "stderr")
        }
        expect(result.get("outcome") == "ok" and result.get("stdout") == "",
               "a streamed run: expected outcome ok and an empty stdout", result)
        expect(streamed == {"stdout": "out\n", "stderr": "err\n"},
               "a streamed run: expected out/err via run/output", chunks)
        expect(all(c.get("sessionId") == python for c in chunks),
               "run/output names the session", chunks)

        javascript = client.create_session("javascript")
        result = client.run(javascript, 'console.log(call("add", {a: 2, b: 3}))')
        expect_ok(result, "5\n", "a JavaScript host call")

        ids = sorted(s["sessionId"] for s in client.list_sessions())
        expect(ids == sorted([python, javascript]), "session/list: both sessions", ids)

        result = client.run_once("python", 'print(call("add", a=20, b=22))')
        expect_ok(result, "42\n", "a one-shot run with a host call")

        client.close_session(javascript)
        for session in ("no-such-session", javascript):
            try:
                client.run(session, "1")
            except GoruError as err:
                expect(err.code == codes.UNKNOWN_SESSION,
                       "session/run on %r: expected code -32001" % session, err.code)
            else:
                raise AssertionError("session/run on %r: expected an UnknownSession error"
                                     % session)


def main():
    socket_path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GORU_SOCKET")
    if not socket_path:
        print("usage: test_client.py SOCKET (or set GORU_SOCKET)", file=sys.stderr)
        return 1
    def give_up():
        print("FAIL (Python client): no answer within 120 s", file=sys.stderr)
        os._exit(1)

    watchdog = threading.Timer(120, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        check(socket_path)
    except AssertionError as err:
        print("FAIL (Python client): %s" % err, file=sys.stderr)
        return 1
    except Exception:
        print("FAIL (Python client): unexpected error", file=sys.stderr)
        traceback.print_exc()
        return 1
    finally:
        watchdog.cancel()
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
