"""Atomic artifact writes: a crash never leaves a half-written file or directory behind.

Files are written to a temporary sibling and renamed over the target. Directories are built in a sibling
staging directory `.<name>.tmp-<pid>-<tag>` and swapped in: the old one is renamed to `.<name>.old-<pid>-<tag>`,
the new one renamed into place, the old one removed. A process killed mid-way leaves those siblings behind;
the next atomic_dir in the same parent removes the ones whose process is gone (restoring an `.old-` whose
target is missing, so a kill between the two renames loses nothing). Everything written follows the umask.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# A staging directory younger than this whose lock is free may still be about to be locked by its creator.
_LOCK_GRACE_SECONDS = 60.0
_STAGING = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[0-9a-f]{8}$")


def current_umask() -> int:
    try:  # Linux shows it without changing it (setting and restoring it races with other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: str | bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp creates 0600 whatever the umask
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def is_staging(path: Path) -> bool:
    """A staging or set-aside sibling made by atomic_dir."""
    return _STAGING.match(Path(path).name) is not None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _lock_is_free(directory: Path) -> bool:
    """True when no process holds the flock its creator keeps on a staging directory."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases a lock we took


def _is_stale(directory: Path, kind: str, pid: int) -> bool:
    if not _pid_alive(pid):
        return True
    if kind == "old":  # only ever exists for a moment while its (live) process swaps
        return False
    # The pid may have been reused (common in containers): stale unless its creator still holds its lock.
    try:
        age = time.time() - directory.stat().st_mtime
    except OSError:
        return False
    return age > _LOCK_GRACE_SECONDS and _lock_is_free(directory)


def remove_stale_staging(parent: Path) -> list[Path]:
    """Remove the staging directories in `parent` left by killed processes; returns what was removed."""
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return []
    removed = []
    for entry in sorted(entries, key=lambda p: p.name):  # `.x.old-` sorts before `.x.tmp-`
        m = _STAGING.match(entry.name)
        if m is None or not entry.is_dir() or entry.is_symlink() or not _is_stale(entry, m["kind"], int(m["pid"])):
            continue
        target = entry.with_name(m["name"])
        try:
            if m["kind"] == "old" and not os.path.lexists(target):
                os.replace(entry, target)  # killed between the two renames: the previous output comes back
                continue
            shutil.rmtree(entry)
            removed.append(entry)
        except OSError:
            pass  # read-only or raced with another cleaner: not worth failing the run for
    return removed


def _sibling(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a staging directory; on success it replaces `path` whole, on failure it is removed.

    An existing `path` is replaced whatever it holds: callers that must not replace some directories check first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(path.parent)
    staging = _sibling(path, "tmp")
    staging.mkdir()
    lock = None
    try:
        lock = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while staging: see _is_stale
        os.chmod(staging, 0o777 & ~current_umask())
        yield staging
        _swap_in(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            os.close(lock)


def _swap_in(staging: Path, path: Path) -> None:
    if not os.path.lexists(path):
        os.replace(staging, path)
        return
    if path.is_symlink() or not path.is_dir():
        raise OSError(errno.ENOTDIR, "not a directory", str(path))
    old = _sibling(path, "old")
    os.replace(path, old)
    try:
        os.replace(staging, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
