"""The asyncio event loop of the sandbox.

The stock loop cannot run under WASI: it creates a self-pipe with
`socket.socketpair()`, which falls back to a TCP connection that the sandbox
refuses, and its selector would wait on file descriptors that never become
ready (the guest has no sockets or pipes it could wait on).

Here nothing but time can wake the loop up, so the selector's "wait for I/O"
is a sleep until the next timer. This is also the one place where every task
is blocked: host calls made with `async_call` are sent here, all pending
ones as a single `call-batch`, before sleeping.

Installed as the default loop, so plain `asyncio.run(main())`,
`asyncio.new_event_loop()` and `asyncio.Runner()` use it.
"""

import asyncio
import asyncio.unix_events
import errno
import selectors
import time
import types

import goru_host


class WouldWaitForeverError(RuntimeError):
    """Every task waits and nothing (no timer, no host call) can wake one."""


class _TimerOnlySelector(selectors.BaseSelector):
    """A selector with nothing to select on: waiting is sleeping."""

    def register(self, fileobj, events, data=None):
        raise OSError(errno.ENOTSUP, "the sandbox has no file descriptors to wait on")

    def unregister(self, fileobj):
        raise KeyError(fileobj)

    def select(self, timeout=None):
        # A timeout of 0 means callbacks are ready: let them run first, so
        # that every call the tasks are about to make joins the batch.
        if timeout != 0 and goru_host.has_pending():
            goru_host.flush_pending()
            return []
        # The loop passes None when it has no timer and no ready callback,
        # i.e. it would wait for I/O that cannot happen: a deadlock.
        if timeout is None:
            raise WouldWaitForeverError(
                "the event loop would wait forever: every task is waiting on "
                "something that nothing in the sandbox can complete"
            )
        if timeout > 0:
            time.sleep(timeout)
        return []

    def get_map(self):
        return types.MappingProxyType({})


class SandboxEventLoop(asyncio.unix_events.SelectorEventLoop):
    """The stock selector loop without its self-pipe, on a sleeping selector."""

    def __init__(self, selector=None):
        super().__init__(selector or _TimerOnlySelector())

    # The self-pipe only wakes the loop from other threads or signal
    # handlers; the guest has neither, and cannot create the socket pair.
    def _make_self_pipe(self):
        self._ssock = self._csock = None

    def _close_self_pipe(self):
        pass


def install():
    """Makes SandboxEventLoop what every public way of getting a loop returns."""
    asyncio.unix_events._UnixDefaultEventLoopPolicy._loop_factory = SandboxEventLoop
    asyncio.SelectorEventLoop = asyncio.EventLoop = SandboxEventLoop
    asyncio.unix_events.SelectorEventLoop = asyncio.unix_events.EventLoop = SandboxEventLoop
