"""User-facing errors.

Anything a user can cause (bad config, bad data, unknown alias) raises a
``ForecastingError`` whose message alone says what is wrong; the CLI prints
it without a traceback and exits non-zero.
"""

from __future__ import annotations

from collections.abc import Sequence


class ForecastingError(Exception):
    """An error caused by input the user controls; the message is the whole story."""


class DataValidationError(ForecastingError):
    """A frame failed validation; ``problems`` lists every problem found, not just the first."""

    def __init__(self, name: str, problems: Sequence[str]) -> None:
        self.name = name
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{name}: {len(self.problems)} problem(s)\n{lines}")


class ConfigError(ForecastingError):
    """A config file is invalid; the message lists every problem with its field path."""


def capped_list(items: Sequence[object], *, limit: int = 10, bullet: str = "  - ") -> str:
    """The first ``limit`` items, one per line after ``bullet``, then ``... and N more``: long lists stay readable.

    With ``bullet=""`` the items are joined by ", " on one line instead (for a list inside a sentence).
    """
    shown = [str(item) for item in list(items)[:limit]]
    rest = len(items) - len(shown)
    if not bullet:
        return ", ".join(shown) + (f", ... and {rest} more" if rest > 0 else "")
    lines = [f"{bullet}{item}" for item in shown]
    if rest > 0:
        lines.append(f"{bullet[: len(bullet) - len(bullet.lstrip())]}... and {rest} more")
    return "\n".join(lines)
