"""User-facing failures: one exception root, one line at the entry point, never a traceback for a user's mistake."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

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
    ) -> None:
        where = [str(path)]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        message = f"{', '.join(where)}: {problem}"
        if fix:
            message += f" — {fix}"
        super().__init__(message)
        self.path, self.row, self.column = str(path), row, column


def cli_entry(main: Callable[..., T]) -> Callable[..., T]:
    """Turn a UserError into ``error: <message>`` on stderr and exit status 2 (no traceback)."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> T:
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
