"""The one error type users see.

Every problem caused by bad input raises :class:`InitlabError` (a ``ValueError``)
with a one-line message that names the problem and the fix. The CLI turns it into
that line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations


class InitlabError(ValueError):
    """Bad input: the message is one line naming the problem and the fix."""


class UnknownNameError(InitlabError, KeyError):
    """A name (scheme, preset, activation, ...) that is not known."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def suggest(name: str, candidates: list[str] | tuple[str, ...], n: int = 3) -> str:
    """Return ``" (did you mean a, b?)"`` for the nearest candidates, or ``""``."""
    import difflib

    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
    if not close:
        lowered = name.lower()
        close = [c for c in candidates if lowered in c or c in lowered][:n]
    return f" (did you mean {', '.join(close)}?)" if close else ""
