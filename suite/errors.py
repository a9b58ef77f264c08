"""The one exception type the CLI turns into a clear message and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """An error the user can fix: bad arguments, missing or malformed data.

    The CLI prints the message without a traceback and exits with status 2.
    Messages follow the Keras style: what was expected, what was received.
    """


def closest(name: str, choices: Iterable[str]) -> str:
    """Returns ` Did you mean 'x'?` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""
