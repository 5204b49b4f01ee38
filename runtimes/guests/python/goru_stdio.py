"""stdout and stderr that never lose output.

componentize-py's interpreter writes stdout and stderr unbuffered
(PYTHONUNBUFFERED is baked into the snapshot): its text layer sits on a raw
FileIO and ignores short writes, and the WASI output stream takes at most
64 KiB a call, so `print("x" * 10**8)` printed 65,536 bytes and succeeded.
Here the text layer sits on a raw stream whose write() loops until all of
it is written.

Output must reach the host as it is printed, since a trap (timeout, memory)
ends the run without a chance to flush. stderr stays unbuffered; stdout is
line-buffered, so a print() is still sent at once, in one write instead of
two (20,000 prints: 102 ms unbuffered, 64 ms line-buffered; fully buffered
would be 15 ms, but lose what was printed before a timeout). The prelude
flushes both at the end of every run.
"""

import errno
import io
import sys


class CompleteWriter(io.RawIOBase):
    """A raw, write-only stream on a file descriptor that writes everything."""

    def __init__(self, fd, name):
        super().__init__()
        self._file = io.FileIO(fd, "w", closefd=False)
        self.name = name

    def writable(self):
        return True

    def fileno(self):
        return self._file.fileno()

    def write(self, data):
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            written = self._file.write(view[done:])
            if not written:
                raise OSError(errno.EIO, f"{self.name} accepted no more output")
            done += written
        return done


def _replace(stream, fd, line_buffering):
    """A text stream with the encoding and error handler of `stream`, on a
    CompleteWriter."""
    return io.TextIOWrapper(
        CompleteWriter(fd, stream.name),
        encoding=stream.encoding,
        errors=stream.errors,
        newline="\n",
        line_buffering=line_buffering,
        write_through=not line_buffering,
    )


def install():
    sys.stdout = sys.__stdout__ = _replace(sys.__stdout__, 1, line_buffering=True)
    sys.stderr = sys.__stderr__ = _replace(sys.__stderr__, 2, line_buffering=False)
