"""The one exception type the CLI turns into a clear message and exit code 2."""

from __future__ import annotations

import difflib
import re
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


def graph_error_cause(message: str) -> str:
    """The line of a TensorFlow graph error that says what went wrong.

    A served export's refusal arrives as `Graph execution error: ... Detected
    at node ...`, with the cause (`assertion failed: [Expected ...]` or a
    decoder's own message) on one line among node and stack lines; this is
    that line, without the assertion wrapper.
    """
    if "Summarized data: " in message:  # The same assertion run eagerly: "Expected '...' to be true. Summarized data: b'...'".
        text = message.split("Summarized data: ", 1)[1].strip()
        if text[:2] in ("b'", 'b"') and text[-1:] == text[1]:
            text = text[2:-1]
        return text.replace("\\'", "'")
    for line in message.splitlines():
        text = line.strip()
        if not text or text.startswith(("Graph execution error", "Detected at node", "<stack traces", "[[", "File ")):
            continue
        # From inside a nested function (an export's endpoint, the shared image decoder) the line starts with
        # the function's name: `{{function_node __inference_...}} assertion failed: [...]`.
        text = re.sub(r"^(\{\{function_node [^}]*\}\}\s*)+", "", text)
        if text.startswith("assertion failed: [") and text.endswith("]"):
            text = text[len("assertion failed: ["):-1]
        return text.replace("\\'", "'")
    return message.strip()
