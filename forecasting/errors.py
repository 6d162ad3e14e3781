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
