"""User-facing failures: one exception root, one line at the entry point, never a traceback for a user's mistake."""

from __future__ import annotations

import errno
import functools
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from essayio import console

T = TypeVar("T")


class UserError(Exception):
    """A problem the user can fix; ``str(err)`` is the whole message."""


class DataError(UserError):
    """Bad input data, located as precisely as we can: file, row, column, and what to do."""

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        row: int | None = None,
        column: str | None = None,
        fix: str = "",
        line: int | None = None,
    ) -> None:
        where = [str(path)]
        if row is not None:
            where.append(f"row {row}" if line is None or line == row + 1 else f"row {row} (line {line})")
        if column is not None:
            where.append(f"column '{column}'")
        message = f"{', '.join(where)}: {problem}"
        if fix:
            message += f" — {fix}"
        super().__init__(message)
        self.path, self.row, self.column = str(path), row, column


# what to do about an operating-system error the user's machine raised (the errno names the cause)
OS_FIXES = {
    errno.ENOSPC: "free some disk space (or point the output elsewhere) and run the command again",
    errno.EDQUOT: "free some disk space (or point the output elsewhere) and run the command again",
    errno.EROFS: "the file system is read-only: point the output to a writable folder",
    errno.EACCES: "you lack permission: fix the folder's permissions or point the output elsewhere",
    errno.EPERM: "you lack permission: fix the folder's permissions or point the output elsewhere",
    errno.ENOENT: "check the path",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a file is in the way where a folder is needed: move it or point the output elsewhere",
}


def os_error_line(err: OSError) -> str:
    """One line for an I/O failure: the path, the system's reason, and what to do."""
    where = err.filename if err.filename is not None else "a file"
    fix = OS_FIXES.get(err.errno or -1, "check the file and the disk, then run the command again")
    return f"{where}: {err.strerror or err} — {fix}"


OWN_PACKAGES = {"daigt", "augment", "essayio"}


def missing_module_line(name: str) -> str:
    return (
        f"the Python module '{name}' is not installed here: run `make setup` (it installs requirements.txt), "
        "or, in an offline Kaggle package, rebuild it with src/package.py"
    )


class Terminated(BaseException):
    """SIGTERM (what ``timeout``, docker and systemd send), raised where the program is, so every ``finally``
    and context manager on the way out runs (temp files removed, workers stopped), as for Ctrl-C."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


INTERRUPTED = {KeyboardInterrupt: ("interrupted (Ctrl-C)", 130), Terminated: ("terminated (SIGTERM)", 143)}


def cli_entry(main: Callable[..., T]) -> Callable[..., T]:
    """Turn a UserError, a missing third-party module, or an I/O error of the machine (full or read-only disk,
    permissions) into ``error: <message>`` on stderr and exit status 2; Ctrl-C and SIGTERM into one line and
    exit status 130 / 143, after the way out has removed what was half-written. Anything else is a bug and
    keeps its traceback."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> T:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _terminated)
        try:
            return main(*args, **kwargs)
        except (KeyboardInterrupt, Terminated) as err:
            what, status = INTERRUPTED[type(err)]
            console.error(f"{what}: stopped; nothing half-written was left behind, run the command again to finish")
            raise SystemExit(status) from None
        except UserError as err:
            console.error(f"error: {err}")
            raise SystemExit(2) from None
        except ModuleNotFoundError as err:
            if err.name is None or err.name.split(".")[0] in OWN_PACKAGES:
                raise  # our own module missing is a bug
            console.error(f"error: {missing_module_line(err.name)}")
            raise SystemExit(2) from None
        except OSError as err:
            if err.errno not in OS_FIXES:
                raise
            console.error(f"error: {os_error_line(err)}")
            raise SystemExit(2) from None

    return wrapper
