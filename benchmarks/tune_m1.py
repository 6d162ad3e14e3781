"""The tuned M1 config: ``python -m benchmarks.tune_m1 [--trials N]`` -> configs/tuned/m1-monthly.yaml.

Runs the library behind ``forecast tune`` (Optuna TPE, median pruning) on M1's data *before* the
official hold-out only, so the accuracy benchmark's "tuned" row never saw its test points. The
objective needs a validation part: the trials hold out each long-enough series' last 18 points
(``split.val_fraction: 0.1``; shorter series train only). The best trial is written back with the
shipped config's split (no validation: the final model trains on every point, as the default does).
"""

from __future__ import annotations

import argparse

import yaml

from benchmarks.accuracy import DATASETS, ROOT, holdout_split

OUT = ROOT / "configs" / "tuned" / "m1-monthly.yaml"
SPACE = {
    "lookback_seasons": [1.5, 4.0],
    "hidden_size": [16, 32, 64],
    "num_layers": [1, 2],
    "dropout": [0.0, 0.3],
    "learning_rate": [3e-4, 1e-2],
    "target_transform": ["log"],
    "anchor": ["last", "delta", "none"],
    "seed": 0,
}


def main(argv: list[str] | None = None) -> None:
    from forecasting.config.model import deep_merge
    from forecasting.tune import SearchSpace, create_study, tune

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    args = parser.parse_args(argv)
    ds = DATASETS["m1"]
    shipped = yaml.safe_load((ROOT / ds.config).read_text())
    base = {**shipped, "name": "m1-monthly-tuned", "split": {"val_fraction": 0.1, "test_fraction": 0.0},
            "training": {**shipped.get("training", {}), "patience": 3}}
    train = holdout_split(ds.frame(), shipped["window"]["horizon"], ds.origins)
    space = SearchSpace.model_validate(SPACE)
    result = tune(create_study("m1-monthly-tuned", space), base, train, trials=args.trials, space=space, source=str(ds.config))
    best = result.best
    for r in result.records:
        value = "-" if r.value is None else f"{r.value:.4g}"
        print(f"trial {r.number:2d} {r.state:8s} val_mase {value:>10s} {r.overrides}")
    tuned = deep_merge(base, best.overrides)
    tuned["split"] = shipped["split"]
    header = (f"# Written by `python -m benchmarks.tune_m1 --trials {args.trials}`: the best of {len(result.records)} Optuna "
              f"trials on M1 before its hold-out\n# (validation MASE {best.value:.4g}, trial {best.number}); "
              "trained like the shipped configs/m1-monthly.yaml.\n")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(header + yaml.safe_dump(tuned, sort_keys=False))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
