"""stdout and stderr that never lose output.

The interpreter writes stdout and stderr unbuffered (PYTHONUNBUFFERED is
baked into the snapshot), so output reaches the host as it is printed, even
when the run is then stopped by a trap. Unbuffered, its text layer sits on a
raw FileIO and ignores short writes, and the WASI output stream takes at
most 64 KiB a call: `print("x" * 10**8)` printed 65,536 bytes and succeeded.
Here the text layer sits on a raw stream whose write() loops until all of
it is written.
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


def _replace(stream, fd):
    """A text stream like `stream` (encoding, error handler, unbuffered) on a
    CompleteWriter."""
    return io.TextIOWrapper(
        CompleteWriter(fd, stream.name),
        encoding=stream.encoding,
        errors=stream.errors,
        newline="\n",
        write_through=True,
    )


def install():
    sys.stdout = sys.__stdout__ = _replace(sys.__stdout__, 1)
    sys.stderr = sys.__stderr__ = _replace(sys.__stderr__, 2)
