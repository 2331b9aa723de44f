"""Augmentation's user-facing failure (bad recipe, missing engine or resource): one line at the CLI."""

from __future__ import annotations

from essayio.errors import UserError


class AugmentError(UserError):
    """A problem the user can fix; ``str(err)`` is the whole message."""
