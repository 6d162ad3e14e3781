"""One way to name a model (`--model NAME[@ALIAS]` or `--config FILE`), usage errors before any work, and
the helpers of `forecast status`; fast, no server."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from forecasting.cli.app import app, model_ref
from forecasting.errors import ConfigError
from tests.conftest import tiny_config_dict


@pytest.mark.parametrize(
    "given, kwargs, expected",
    [
        ("m", {}, ("m", "champion")),
        ("m@challenger", {}, ("m", "challenger")),
        ("models:/m@challenger", {}, ("m", "challenger")),
        ("m", {"default_alias": None}, ("m", None)),
        ("m", {"allow_alias": False}, ("m", "champion")),
    ],
)
def test_model_references(given, kwargs, expected):
    assert model_ref(given, None, **kwargs) == expected


def test_a_config_names_its_model(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict(name="from-config")))
    assert model_ref(None, path) == ("from-config", "champion")
    assert model_ref(None, path, default_alias=None) == ("from-config", None)


@pytest.mark.parametrize(
    "model, config, kwargs, message",
    [
        (None, None, {}, "pass exactly one of --model NAME[@ALIAS] or --config FILE"),
        ("m", "x.yaml", {}, "pass exactly one of"),
        ("m@", None, {}, "is not NAME, NAME@ALIAS"),
        ("a/b", None, {}, "is not NAME, NAME@ALIAS"),
        ("m@champion", None, {"allow_alias": False}, "works on every version of the model; pass --model m"),
    ],
)
def test_bad_references_say_what_to_pass(model, config, kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        model_ref(model, config, **kwargs)


@pytest.mark.parametrize(
    "args, message",
    [
        (["promote", "--model", "m"], "pass the version to promote: --version V, or --model NAME@ALIAS"),
        (["promote", "--model", "m@challenger", "--version", "3"], "(not both)"),
        (["promote", "m", "3", "4"], "unexpected argument(s) ['4']"),
        (["rollback", "--model", "m@champion"], "works on every version of the model"),
        (["monitor", "--model", "m@champion"], "works on every version of the model"),
        (["predict"], "pass exactly one of --model NAME[@ALIAS] or --config FILE"),
        (["predict", "--model", "m@challenger", "--alias", "champion"], "--model names alias 'challenger' and --alias 'champion'"),
        (["status", "--model", "m@x"], "works on every version of the model"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path, args, message):
    result = CliRunner().invoke(app, [*args, "--home", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.count("error:") == 1 and "Traceback" not in result.output


def test_every_command_says_what_it_does():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    described = {line.split()[1] for line in result.output.splitlines() if line.startswith("│ ") and len(line.split()) > 4}
    assert {"train", "predict", "promote", "rollback", "monitor", "tune", "status", "serve", "quickstart"} <= described, result.output
    for command in ("predict", "promote", "rollback", "monitor", "status"):
        help_text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
        assert "--model" in help_text, command
    for command in ("predict", "promote", "rollback", "monitor"):
        assert "--config" in CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output, command


def test_piped_output_is_wide_and_a_terminal_keeps_its_width():
    """The CLI's consoles, in a real process whose stdout is a pipe: tables are not cut at 80 or 120 columns."""
    code = (
        "from rich.table import Table\n"
        "from forecasting.cli.app import console\n"
        "t = Table(); [t.add_column(c, no_wrap=True) for c in ('series', 'status', 'note')]\n"
        "t.add_row('weather/' + 'x' * 150, 'changed', 'y' * 80)\n"
        "console.print(t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "weather/" + "x" * 150 in out and "changed" in out and "y" * 80 in out
    assert "…" not in out


def test_status_durations_read_at_a_glance():
    from forecasting.ops.health import duration_text as _duration

    assert [_duration(s) for s in (30, 600, 5 * 3600, 3 * 86_400, 400 * 86_400)] == [
        "30 s", "10 min", "5.0 h", "3.0 days", "400 days"]
    assert _duration(-120) == "2.0 min ahead"


def test_overview_names_agree_with_the_registry():
    """overview.py repeats these names to stay free of torch; they must not drift apart."""
    from forecasting.registry import models, overview

    assert (overview.CHAMPION, overview.CHALLENGER) == (models.CHAMPION, models.CHALLENGER)
    assert (overview.BACKTEST_EXPERIMENT, overview.MONITORING_EXPERIMENT) == (models.BACKTEST_EXPERIMENT, models.MONITORING_EXPERIMENT)
