"""Champion/challenger: when a model version may become (or replace) the one in service.

Pure policy, no MLflow: the registry stores what is decided here, and the train
flow feeds it backtest scores on the same recent origins: the challenger's, the
baselines' it must beat (``promotion.must_beat``) and, when there is one, the
champion's.

The rule, in order (lower is better for every metric used):

1. A challenger without a finite score is never promoted.
2. The gate: it must beat EVERY must-beat baseline, strictly, on the same origins.
   A baseline that was not scored there (missing or not a number) fails the
   gate too: nobody can say the challenger beats it. This holds for the first
   version of a name as well: a name whose versions all fail has no champion.
3. Without a champion, a challenger that passed the gate becomes champion.
4. With one, it must also beat the champion by ``margin`` (relative).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

LABELS = {"seasonal_naive": "seasonal naive"}
"""How reasons spell a baseline; others by their config name (naive, drift, mean, ets, theta, arima)."""


def label(baseline: str) -> str:
    return LABELS.get(baseline, baseline)


@dataclass(frozen=True)
class Decision:
    """Whether to promote, and the sentence that says why (recorded on the version)."""

    promote: bool
    reason: str
    metric: str
    challenger: float
    champion: float | None
    baseline: float | None
    """Seasonal naive's score on the same origins when it was one of the must-beat baselines."""
    baselines: Mapping[str, float | None] = field(default_factory=dict, hash=False)
    """Every must-beat baseline's score on the same origins, in ``must_beat`` order (None: not scored)."""
    lost_to: tuple[str, ...] = ()
    """What stopped a rejected challenger: baseline names, "champion", or "not backtested"."""


def _fmt(value: float | None) -> str:
    return "-" if value is None else format(value, ".4g")


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def decide(
    *,
    metric: str,
    challenger: float,
    champion: float | None,
    baselines: Mapping[str, float | None] | None = None,
    margin: float = 0.0,
    champion_version: str | None = None,
) -> Decision:
    """Apply the promotion rule (module docstring) to one challenger's scores.

    ``baselines`` maps each must-beat baseline (``promotion.must_beat``, in order) to its ``metric`` on the
    challenger's backtest origins; empty means no gate. ``champion`` is the champion's score on the same
    origins (None: the name has no champion). ``margin`` is relative: 0.02 = 2% lower than the champion.
    """
    gate = dict(baselines or {})
    seasonal = gate.get("seasonal_naive")

    def made(promote: bool, reason: str, lost_to: tuple[str, ...] = ()) -> Decision:
        return Decision(promote, reason, metric, challenger, champion, seasonal, gate, lost_to)

    if not _finite(challenger):
        return made(False, f"challenger {metric} is {challenger}: not a number to promote on", ("challenger score",))

    unscored = [name for name, score in gate.items() if not _finite(score)]
    lost = [name for name, score in gate.items() if _finite(score) and challenger >= score]
    if lost or unscored:
        parts = []
        if lost:
            scores = " and ".join(f"{label(n)} ({metric} {challenger:.4g} vs {gate[n]:.4g})" for n in lost)
            parts.append(f"lost to {scores} on the same origins")
        if unscored:
            parts.append(
                f"{', '.join(label(n) for n in unscored)} not scored on these origins, so nobody can say it is beaten "
                "(is it listed in baseline.statistical?)"
            )
        return made(False, "; ".join(parts), tuple(lost + unscored))

    beaten = ", ".join(f"{label(n)} {gate[n]:.4g}" for n in gate)
    if champion is None:
        if not gate:
            return made(True, f"first model of this name: becomes champion ({metric} {challenger:.4g}; "
                              "promotion.must_beat is empty)")
        return made(True, f"first model of this name: {metric} {challenger:.4g} beats {beaten}: becomes champion")

    who = f"champion v{champion_version}" if champion_version else "the champion"
    needed = champion * (1.0 - margin)
    if challenger < needed or (margin == 0.0 and challenger < champion):
        also = f" and {beaten}" if gate else " (promotion.must_beat is empty)"
        return made(
            True,
            f"challenger {metric} {challenger:.4g} beats {who}'s {champion:.4g} by {1 - challenger / champion:.1%} "
            f"(needed {margin:.1%}){also}",
        )
    return made(
        False,
        f"challenger {metric} {challenger:.4g} is not {margin:.1%} better than {who}'s {_fmt(champion)}",
        ("champion",),
    )
