"""Monitoring settings: alert thresholds and the retrain-on-alert policy, per model.

They are operations settings, not model settings: they live in
``configs/monitor/settings.yaml`` (``defaults`` plus per-model overrides, read
by :func:`load_settings`), so changing one never needs a retrain. The scoring
that uses them is ``forecasting.ops.monitor``; see ``docs/monitoring.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from forecasting.config.model import config_error, read_yaml, validation_problems


class MonitorSettings(BaseModel):
    """Thresholds of the alert and what to do when it fires (one model's resolved settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    windows_days: tuple[int, ...] = Field(
        (7, 30), description="Rolling windows, in days back from the period end, over the forecast target times.")
    mase_factor: float = Field(1.5, gt=0, description="Alert when realised MASE > factor x promised MASE.")
    coverage_band: float = Field(
        0.15, ge=0, lt=1, description="Alert when interval coverage leaves [nominal - band, nominal + band].")
    level_shift: float = Field(
        1.0, gt=0, description="Drift: alert when |recent mean - reference mean| exceeds this many reference std.")
    scale_ratio: float = Field(2.0, gt=1, description="Drift: alert when recent std / reference std leaves [1/ratio, ratio].")
    max_missing: float = Field(0.2, ge=0, le=1, description="Drift: alert when more than this share of the recent grid has no target.")
    min_points: int = Field(3, ge=1, description="Windows with fewer scored points are reported but never alert.")
    drift_reference: Literal["same_season", "training_window"] = Field(
        "same_season",
        description="What recent inputs are compared with: the same calendar window in earlier training years "
        "(falls back to the whole window when training spans < 1 year), or the whole training window.")
    season_pad_days: int = Field(
        14, ge=0, le=120, description="same_season: days added on each side of the recent window, a year (or more) back.")
    retrain_on_alert: bool = Field(False, description="On alert, start a run of the retrain deployment (fire-and-forget).")
    retrain_deployment: str | None = Field(
        None, description="'flow/deployment' to run on alert; None: the train deployment of configs/schedules.yaml "
        "whose config trains this model.")

    @field_validator("windows_days", mode="before")
    @classmethod
    def _windows(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        return value

    @field_validator("windows_days")
    @classmethod
    def _positive_windows(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(int(d) < 1 for d in value):
            raise ValueError(f"must be positive day counts, got {list(value)}")
        return tuple(int(d) for d in value)

    @field_validator("retrain_deployment")
    @classmethod
    def _deployment_name(cls, value: str | None) -> str | None:
        if value is not None and value.count("/") != 1:
            raise ValueError(f"must read 'flow name/deployment name', e.g. 'train/retrain-weather', got {value!r}")
        return value


DEFAULT_SETTINGS_PATH = Path(__file__).resolve().parents[2] / "configs" / "monitor" / "settings.yaml"


class _SettingsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)


def load_settings(
    model_name: str,
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> MonitorSettings:
    """The monitor settings of ``model_name``: built-in defaults < file ``defaults`` < file ``models.<name>`` < overrides.

    ``path`` None reads ``configs/monitor/settings.yaml`` when it exists (an
    installed package without the repo's configs runs on built-in defaults);
    an explicit path must exist. Every section of the file is validated, not
    only this model's, so a typo in another model's section is caught on the
    first run, and one ``ConfigError`` lists every problem. Overrides whose
    value is None are ignored (a CLI flag or flow parameter left unset).
    """
    where = DEFAULT_SETTINGS_PATH if path is None else Path(path)
    raw: dict[str, Any] = {}
    if path is not None or where.is_file():
        raw = read_yaml(where, what="monitor settings")
    try:
        file = _SettingsFile.model_validate(raw)
    except ValidationError as exc:
        raise config_error(f"monitor settings {where}", validation_problems(exc)) from None
    problems = []
    sections = [("defaults", {})] + [(f"models.{name}", values or {}) for name, values in file.models.items()]
    for section, values in sections:
        try:
            MonitorSettings.model_validate({**file.defaults, **values})
        except ValidationError as exc:
            # Problems of the defaults are reported once, under ``defaults``.
            own = validation_problems(exc) if section == "defaults" else [
                p for p in validation_problems(exc) if p.split(":", 1)[0].split(".", 1)[0] in values]
            problems += [f"{section}.{p}" for p in own]
    if problems:
        raise config_error(f"monitor settings {where}", problems)
    merged = {**file.defaults, **(file.models.get(model_name) or {}),
              **{k: v for k, v in (overrides or {}).items() if v is not None}}
    try:
        return MonitorSettings.model_validate(merged)
    except ValidationError as exc:
        raise config_error(f"monitor settings of {model_name}", validation_problems(exc)) from None
