"""The pipeline's user-facing failures: DaigtError for anything the user can fix (config, artifacts, commands).

Every entry point is wrapped in ``cli_entry``, which prints such an error as one line and exits 2.
"""

from __future__ import annotations

from essayio.errors import DataError, UserError, cli_entry

__all__ = ["DaigtError", "DataError", "UserError", "cli_entry"]


class DaigtError(UserError):
    """A problem the user can fix; ``str(err)`` is the whole message."""
