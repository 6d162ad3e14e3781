"""Champion/challenger: when a new model version may replace the one in service.

Pure policy, no MLflow: the registry stores what is decided here, and the train
flow feeds it backtest scores of both versions on the same recent origins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """Whether to promote, and the sentence that says why (recorded on the version)."""

    promote: bool
    reason: str
    metric: str
    challenger: float
    champion: float | None
    baseline: float | None


def decide(
    *,
    metric: str,
    challenger: float,
    champion: float | None,
    baseline: float | None,
    margin: float = 0.0,
    champion_version: str | None = None,
) -> Decision:
    """Promote when there is no champion, or when the challenger's error is lower than the
    champion's by at least ``margin`` (relative: 0.02 = 2% lower) AND lower than the
    seasonal-naive baseline's on the same origins. Lower is better for every metric used.
    """
    if not math.isfinite(challenger):
        return Decision(False, f"challenger {metric} is {challenger}: not a number to promote on", metric, challenger, champion, baseline)
    if baseline is not None and math.isfinite(baseline) and challenger >= baseline:
        return Decision(
            False,
            f"challenger {metric} {challenger:.4g} does not beat seasonal naive {baseline:.4g} on the same origins",
            metric, challenger, champion, baseline,
        )
    if champion is None:
        return Decision(True, "first model of this name: becomes champion", metric, challenger, None, baseline)
    who = f"champion v{champion_version}" if champion_version else "the champion"
    needed = champion * (1.0 - margin)
    if challenger < needed or (margin == 0.0 and challenger < champion):
        return Decision(
            True,
            f"challenger {metric} {challenger:.4g} beats {who}'s {champion:.4g} by {1 - challenger / champion:.1%} "
            f"(needed {margin:.1%}) and seasonal naive {baseline if baseline is None else format(baseline, '.4g')}",
            metric, challenger, champion, baseline,
        )
    return Decision(
        False,
        f"challenger {metric} {challenger:.4g} is not {margin:.1%} better than {who}'s {champion:.4g}",
        metric, challenger, champion, baseline,
    )
