import math

from forecasting.registry.policy import decide


def test_first_model_becomes_champion_if_it_beats_the_baseline():
    d = decide(metric="mae", challenger=1.0, champion=None, baseline=2.0)
    assert d.promote and "first model" in d.reason


def test_first_model_worse_than_seasonal_naive_is_not_promoted():
    d = decide(metric="mae", challenger=2.5, champion=None, baseline=2.0)
    assert not d.promote and "does not beat seasonal naive 2" in d.reason


def test_margin_is_relative_and_named_in_the_reason():
    worse = decide(metric="mae", challenger=0.99, champion=1.0, baseline=5.0, margin=0.02, champion_version="3")
    assert not worse.promote
    assert "not 2.0% better than champion v3's 1" in worse.reason
    better = decide(metric="mae", challenger=0.97, champion=1.0, baseline=5.0, margin=0.02, champion_version="3")
    assert better.promote and "3.0%" in better.reason


def test_ties_do_not_promote_and_nan_never_does():
    assert not decide(metric="rmse", challenger=1.0, champion=1.0, baseline=5.0).promote
    assert not decide(metric="mae", challenger=math.nan, champion=None, baseline=1.0).promote
