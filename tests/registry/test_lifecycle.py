"""The promotion rule (forecasting.registry.policy.decide) on numbers: gate first, then the champion."""

import math

from forecasting.registry.policy import decide

SN = {"seasonal_naive": 2.0}


def test_first_model_becomes_champion_if_it_beats_the_baseline():
    d = decide(metric="mae", challenger=1.0, champion=None, baselines=SN)
    assert d.promote and "first model" in d.reason and "seasonal naive 2" in d.reason
    assert d.baseline == 2.0 and d.baselines == SN and d.lost_to == ()


def test_first_model_worse_than_seasonal_naive_is_not_promoted():
    d = decide(metric="mae", challenger=2.5, champion=None, baselines=SN)
    assert not d.promote
    assert d.reason == "lost to seasonal naive (mae 2.5 vs 2) on the same origins"
    assert d.lost_to == ("seasonal_naive",)


def test_a_tie_with_a_baseline_is_a_loss():
    assert not decide(metric="mae", challenger=2.0, champion=None, baselines=SN).promote


def test_beating_seasonal_naive_is_not_enough_when_ets_must_be_beaten_too():
    gate = {"ets": 1.09, "theta": 1.2}
    first = decide(metric="mase", challenger=1.12, champion=None, baselines=gate)
    assert not first.promote
    assert first.lost_to == ("ets",)
    assert "lost to ets (mase 1.12 vs 1.09)" in first.reason and "theta" not in first.reason
    # With a champion the gate comes first: even a big win over the champion does not pass it.
    over = decide(metric="mase", challenger=1.12, champion=3.0, baselines=gate, margin=0.01, champion_version="2")
    assert not over.promote and over.lost_to == ("ets",) and "champion" not in over.reason


def test_every_lost_baseline_is_named():
    d = decide(metric="rmse", challenger=1.5, champion=None, baselines={"seasonal_naive": 3.0, "ets": 1.1, "theta": 1.4})
    assert not d.promote and d.lost_to == ("ets", "theta")
    assert "lost to ets (rmse 1.5 vs 1.1) and theta (rmse 1.5 vs 1.4)" in d.reason


def test_passing_every_baseline_makes_the_first_model_champion():
    d = decide(metric="mae", challenger=1.0, champion=None, baselines={"ets": 1.09, "theta": 1.2})
    assert d.promote and "beats ets 1.09, theta 1.2" in d.reason
    assert d.baseline is None  # seasonal naive was not in the gate


def test_a_baseline_that_was_not_scored_fails_the_gate():
    for missing in (None, math.nan):
        d = decide(metric="mae", challenger=1.0, champion=None, baselines={"seasonal_naive": 2.0, "ets": missing})
        assert not d.promote and d.lost_to == ("ets",)
        assert "ets not scored" in d.reason


def test_an_empty_gate_promotes_the_first_finite_model():
    d = decide(metric="mae", challenger=5.0, champion=None, baselines={})
    assert d.promote and "must_beat is empty" in d.reason
    assert not decide(metric="mae", challenger=math.nan, champion=None, baselines={}).promote


def test_margin_is_relative_and_named_in_the_reason():
    worse = decide(metric="mae", challenger=0.99, champion=1.0, baselines={"seasonal_naive": 5.0}, margin=0.02,
                   champion_version="3")
    assert not worse.promote and worse.lost_to == ("champion",)
    assert "not 2.0% better than champion v3's 1" in worse.reason
    better = decide(metric="mae", challenger=0.97, champion=1.0, baselines={"seasonal_naive": 5.0}, margin=0.02,
                    champion_version="3")
    assert better.promote and "3.0%" in better.reason and "seasonal naive 5" in better.reason


def test_ties_do_not_promote_and_nan_never_does():
    assert not decide(metric="rmse", challenger=1.0, champion=1.0, baselines={"seasonal_naive": 5.0}).promote
    assert not decide(metric="mae", challenger=math.nan, champion=None, baselines={"seasonal_naive": 1.0}).promote


def test_decisions_stay_hashable():
    hash(decide(metric="mae", challenger=1.0, champion=None, baselines=SN))
