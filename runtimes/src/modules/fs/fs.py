"""fs: files on the host directories mounted into this sandbox.

Enable it by mounting a directory: `--mount GUEST:HOST:MODE` on the command
line (`--mount /data:./data:ro`), or the `mounts` capability. A mount's mode
says what code may do under it:

  ro   read files, list directories, exists, stat
  rw   also overwrite existing files, and remove files and empty directories
  rwc  also create files and directories

Paths are guest paths (`/data/x.txt`); a relative path is taken against the
current directory. `..` and symbolic links never lead out of a mount. Plain
`open()` works on mounts too (read-only on `ro` and `rw` mounts, everything
on `rwc` ones). Reads and writes are capped per call (16 MiB by default);
going past a cap raises ValueError. Errors are the ones a local file system
raises: FileNotFoundError, PermissionError, IsADirectoryError,
NotADirectoryError, FileExistsError, OSError.
"""

import collections as _collections
import json as _json
import os as _os

from goru_host import module_call as _call

StatResult = _collections.namedtuple("StatResult", "size is_dir is_file mtime")
StatResult.__doc__ = """What `stat` returns: size in bytes, whether the path is a directory or a
regular file, and the modification time in seconds since the epoch."""


def _path(path):
    path = _os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"fs paths must be str, not {type(path).__name__}")
    if not path.startswith("/"):
        path = _os.path.join(_os.getcwd(), path)
    return path


def read_text(path):
    """The contents of the file at `path`, decoded as UTF-8."""
    return _call("fs.read_text", path=_path(path))


def write_text(path, text):
    """Writes `text` (a str, encoded as UTF-8) to the file at `path`,
    replacing its contents; creating the file needs an `rwc` mount."""
    if not isinstance(text, str):
        raise TypeError(f"write_text needs a str, not {type(text).__name__}")
    _call("fs.write_text", path=_path(path), text=text)


def read_json(path):
    """The JSON value stored in the file at `path`."""
    return _json.loads(read_text(path))


def write_json(path, value, *, indent=None):
    """Writes `value` as JSON to the file at `path` (see `write_text`)."""
    write_text(path, _json.dumps(value, indent=indent))


def listdir(path):
    """The names in the directory at `path`, sorted."""
    return _call("fs.listdir", path=_path(path))


def exists(path):
    """Whether `path` exists on a mount (False for anything unreachable)."""
    return _call("fs.exists", path=_path(path))


def stat(path):
    """A StatResult(size, is_dir, is_file, mtime) for `path`; symbolic links
    are followed."""
    found = _call("fs.stat", path=_path(path))
    return StatResult(found["size"], found["isDir"], found["isFile"], found["mtime"])


def mkdir(path, parents=False):
    """Creates the directory `path` (needs an `rwc` mount). With
    `parents=True`, also its missing parents, and an existing directory is
    not an error (like `mkdir -p`)."""
    _call("fs.mkdir", path=_path(path), parents=bool(parents))


def remove(path):
    """Removes the file, symbolic link or empty directory at `path` (needs an
    `rw` or `rwc` mount). A mount's root cannot be removed."""
    _call("fs.remove", path=_path(path))
