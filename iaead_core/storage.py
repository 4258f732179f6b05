"""Files written without clobbering, read within bounds, and locked: the one place where the
project touches the paths it writes. Pure Python (no numpy, no torch).

Writing (:func:`atomic_output`, :func:`write_text`, :func:`write_json`): every output file —
run folders (config.json, status.json, snapshots, final.npz, model.pt, the manifest,
ranking.csv), score CSVs, reports, an experiment's spec.json and driver.json, the lab's
uploads — is written into a temporary file with a unique name in the target's folder, flushed
to disk, then moved onto the target with one ``os.replace``. A reader never sees half a file,
two writers never share a temporary file, and a failed write leaves the old file (or nothing),
never a 0-byte or half-written one. ``os.replace`` goes only onto a regular file or a new
path: a device (``/dev/null``), a FIFO, a folder, a symbolic link or a read-only file is
refused before anything is written (:func:`check_target`), with an error that names it and
says what to give instead. Appended logs (metrics.jsonl, log.jsonl) are opened by
:func:`open_append` under the same rule.

Failures of the disk itself (full, read-only, no permission) become :class:`StorageError`,
an ``OSError`` whose message names the folder and the fix; the command line exits with status 5
for it.

Reading (:func:`read_limited`, :func:`load_json`): files of a run or experiment folder are
untrusted input. They are read only if they are regular files (a symbolic link to
``/dev/zero`` is refused, not read until memory runs out), up to a size limit, and JSON is
refused when nested deeper than :data:`MAX_JSON_DEPTH`.

Locking (:class:`FileLock`): an exclusive lock on a file that the operating system releases
when its holder dies (``fcntl.flock``; elsewhere an ``O_CREAT | O_EXCL`` lock file).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["StorageError", "check_target", "check_folder", "atomic_output", "write_text",
           "write_json", "open_append", "read_limited", "load_json", "json_depth", "FileLock",
           "TooLargeError", "storage_error", "MAX_JSON_DEPTH"]

#: JSON nested deeper than this is refused by :func:`load_json` (the files of a run folder
#: are at most 5 levels deep).
MAX_JSON_DEPTH = 64

_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class StorageError(OSError):
    """A file or folder cannot be written: the disk is full or read-only, permission is
    denied, or the target is not a regular file or a new path (a device, a FIFO, a folder, a
    symbolic link). The message names the file and its folder and says what to do; ``errno``
    is the operating system's code where there is one; ``path`` the file concerned."""

    def __init__(self, message: str, path: str | os.PathLike | None = None,
                 code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code
        self.path = None if path is None else Path(path)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _what(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def storage_error(e: OSError, path: str | os.PathLike, doing: str = "write",
                  folder: str | os.PathLike | None = None) -> StorageError:
    """A :class:`StorageError` for an ``OSError`` raised while doing ``doing`` on ``path``:
    the folder (``folder``, default the parent of ``path``) and the fix in words (disk full,
    read-only file system, permission denied)."""
    if isinstance(e, StorageError):
        return e
    path = Path(path)
    folder = Path(folder) if folder is not None else path.parent
    code = e.errno
    if code in _NO_SPACE:
        why = (f"the disk holding {folder} is full (no space left on device); free some space "
               "there or write to another folder")
    elif code == errno.EROFS:
        why = f"{folder} is on a read-only file system; write to another folder"
    elif code in (errno.EACCES, errno.EPERM):
        why = (f"permission denied in {folder}; make it writable for this user or write to "
               "another folder")
    else:
        why = f"{e.strerror or type(e).__name__} (in {folder}); write to another folder"
    return StorageError(f"cannot {doing} {path}: {why}", path, code)


def check_target(path: str | os.PathLike) -> Path:
    """Refuse ``path`` as an output file unless it is a regular, writable file or does not
    exist yet; returns it as a Path. Nothing is created.

    Raises
    ------
    StorageError
        ``path`` is a folder, a device (``/dev/null``, ``/dev/full``), a FIFO, a socket, a
        symbolic link (it would be replaced by a file, not followed), or a read-only file;
        the message names it and says what to give instead.
    """
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return p
    except OSError as e:
        raise storage_error(e, p, "check") from e
    if stat.S_ISREG(st.st_mode):
        if not os.access(p, os.W_OK):
            raise StorageError(f"refusing to write {p}: it is a read-only file; make it "
                               "writable or give another file name", p, errno.EACCES)
        return p
    what = _what(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        fix = f"give a file name inside it, e.g. {p / 'scores.csv'}"
    elif stat.S_ISLNK(st.st_mode):
        fix = (f"give the file it points to ({os.path.realpath(p)}) if that is a regular file, "
               "or a new file name")
    else:
        fix = "give the path of a regular file (a new one is created)"
    raise StorageError(f"refusing to write {p}: it is {what}, and iaead writes only regular "
                       f"files or new paths (it would be replaced); {fix}", p, errno.EINVAL)


def check_folder(folder: str | os.PathLike, create: bool = False) -> Path:
    """Make sure files can be written in ``folder`` before any work starts, by creating and
    removing one empty probe file with a unique name.

    With ``create`` the folder is created (with its parents) and probed; without it nothing
    is left behind: a folder that does not exist yet is judged by its nearest existing parent
    (where it would be created).

    Raises
    ------
    StorageError
        The folder (or the parent it would be made in) is not a folder, cannot be created, or
        refuses a new file (read-only file system, permission denied, disk full); the message
        names it and the fix.
    """
    d = Path(folder)
    if create:
        try:
            d.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise StorageError(f"cannot write into {d}: it exists and is not a folder; give a "
                               "folder path", d, errno.ENOTDIR) from None
        except OSError as e:
            raise storage_error(e, d, "create the folder",
                                folder=Path(e.filename) if e.filename else d) from e
        probe_in = d
    else:
        probe_in = d
        while not probe_in.exists() and probe_in != probe_in.parent:
            probe_in = probe_in.parent
        if not probe_in.is_dir():
            raise StorageError(f"cannot write into {d}: {probe_in} is not a folder; give a "
                               "folder path", d, errno.ENOTDIR)
    probe = probe_in / f".iaead-write-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise storage_error(e, d, "write into", folder=probe_in) from e
    return d


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")


@contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8",
                  newline: str | None = None, sync: bool = True) -> Iterator[IO[Any]]:
    """Write a file atomically: ``with atomic_output(p, "wb") as f: np.savez(f, ...)``.

    The target is checked first (:func:`check_target`), its folder created if needed, and the
    content goes to a new temporary file with a unique name in that folder
    (``.<name>.<pid>-<random>.tmp``), which is flushed (and ``fsync``-ed when ``sync``) and
    moved onto ``path`` with ``os.replace`` when the block ends without an exception. An
    existing target keeps its permission bits. On any error the temporary file is removed and
    the target is left as it was.

    Parameters
    ----------
    path : the output file.
    mode : ``"w"`` (text) or ``"wb"`` (binary).
    encoding, newline : as for :func:`open` in text mode.
    sync : ``fsync`` the content before the rename (on by default).

    Raises
    ------
    StorageError
        A refused target (before anything is written), or a failed write (disk full,
        read-only, permission denied); the message names the folder and the fix.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_output writes a whole file: mode 'w' or 'wb', not {mode!r}")
    path = check_target(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error(e, path, "create the folder of") from e
    tmp = _temp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o666)
    except OSError as e:
        raise storage_error(e, path) from e
    try:
        if "b" in mode:
            f: IO[Any] = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", encoding=encoding, newline=newline)
        with f:
            yield f
            f.flush()
            if sync:
                os.fsync(f.fileno())
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass
        check_target(path)  # it may have become something else meanwhile
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, StorageError):
            raise
        cause = _os_error_in(e)  # torch.save turns a full disk into a RuntimeError
        if cause is not None:
            raise storage_error(cause, path) from e
        raise


def _os_error_in(e: BaseException) -> OSError | None:
    """``e`` if it is an OSError, else the first OSError among its causes and contexts (a
    library that wraps a failed write in its own error, as torch.save does), else None."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, OSError):
            return e
        e = e.__cause__ or e.__context__
        seen += 1
    return None


def write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8",
               sync: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_output`); returns the path.

    Raises
    ------
    StorageError
        As :func:`atomic_output`.
    """
    with atomic_output(path, "w", encoding=encoding, sync=sync) as f:
        f.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, *, default: Any = None, indent: int | None = 2,
               sync: bool = True) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (serialised before the file is opened, so
    an object that cannot be serialised leaves nothing behind); returns the path.

    Raises
    ------
    StorageError
        As :func:`atomic_output`.
    TypeError
        ``obj`` holds something JSON cannot represent (and ``default`` does not convert).
    """
    text = json.dumps(obj, indent=indent, default=default)
    return write_text(path, text, sync=sync)


def open_append(path: str | os.PathLike) -> IO[str]:
    """Open a log file (one line per event, e.g. metrics.jsonl) for appending in text mode,
    creating it if needed: never through a symbolic link, and only if it is a regular file.

    Raises
    ------
    StorageError
        ``path`` is a symbolic link, a device, a FIFO or a folder, or cannot be opened
        (read-only, permission denied, disk full).
    """
    p = check_target(path)
    flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fd = os.open(p, flags, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StorageError(f"refusing to write {p}: it is a symbolic link; remove it", p,
                               e.errno) from e
        raise storage_error(e, p, "open") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StorageError(f"refusing to write {p}: it is {_what(st.st_mode)}, not a "
                               "regular file; remove it", p, errno.EINVAL)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


class TooLargeError(ValueError):
    """A file is larger than the limit it is read with (:func:`read_limited`)."""


def read_limited(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Symbolic links are followed, but what they point to must be a regular file (never a
    device such as ``/dev/zero``, a FIFO or a folder), and no more than ``limit + 1`` bytes
    are ever read.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    TooLargeError
        It holds more than ``limit`` bytes (a ``ValueError``; the message gives the limit).
    OSError
        It is not a regular file (``errno.EINVAL``, the message says what it is), or it
        cannot be read.
    """
    p = Path(path)
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{p.name} is {_what(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise TooLargeError(f"{p.name} holds {st.st_size:,} bytes, more than the limit of "
                                f"{limit:,}")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew while we read
        raise TooLargeError(f"{p.name} holds more than the limit of {limit:,} bytes")
    return data


def json_depth(obj: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``[]`` and ``{}`` are 1), counted
    without recursion and only up to ``limit + 1``."""
    deepest, stack = 0, [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            stack.extend((v, depth) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def load_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON from untrusted bytes or text, refusing nesting deeper than ``max_depth``.

    Raises
    ------
    ValueError
        Not UTF-8, not valid JSON, or nested deeper than ``max_depth`` (the message says
        which, with the parser's position, never the content).
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"not UTF-8 text (byte {e.start})") from None
    try:
        obj = json.loads(data)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than the limit of {max_depth} levels") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    # Fewer opening brackets than the limit cannot nest deeper than it (the usual case).
    if data.count("[") + data.count("{") > max_depth and json_depth(obj, max_depth) > max_depth:
        raise ValueError(f"JSON nested deeper than the limit of {max_depth} levels")
    return obj


class FileLock:
    """An exclusive, non-blocking lock on ``path`` (created if needed, never deleted: a lock
    file that vanished while another process waited on it would give two holders).

    With ``fcntl`` (Linux, macOS) it is ``flock(LOCK_EX | LOCK_NB)`` on an open file: atomic,
    and released by the operating system when the holder exits or is killed (``kill -9``
    included), so a lock is never left behind. Elsewhere the lock is the file itself, created
    with ``O_CREAT | O_EXCL`` and removed on release. The lock is held per instance: a second
    instance in the same process does not get it either.

    Use :meth:`acquire` (True if taken) and :meth:`release`, or ``with lock:`` (raises
    ``BlockingIOError`` when it is held elsewhere).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this instance holds the lock."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if it is free; True if taken (or already held by this instance).

        Raises
        ------
        StorageError
            The lock file cannot be created or opened (read-only folder, disk full, ...).
        """
        if self._fd is not None:
            return True
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self._acquire_exclusive_file()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as e:
            raise storage_error(e, self.path, "create the lock file") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise storage_error(e, self.path, "lock") from e
        self._fd = fd
        return True

    def _acquire_exclusive_file(self) -> bool:  # pragma: no cover - Windows
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        except OSError as e:
            raise storage_error(e, self.path, "create the lock file") from e
        self._fd = fd
        return True

    def release(self) -> None:
        """Release the lock (no-op if not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            os.close(fd)
            try:
                os.unlink(self.path)
            except OSError:
                pass
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> "FileLock":
        if not self.acquire():
            raise BlockingIOError(errno.EWOULDBLOCK, f"{self.path} is locked by another holder")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:
            pass
