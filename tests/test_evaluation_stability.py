"""lofw.evaluation.stability against closed forms."""

import math

import numpy as np
import pytest

from lofw.evaluation.stability import STABLE_RATIO, stability


def test_constant_run_is_stable_with_ratio_one():
    s = stability(np.full((2, 50), 0.3), horizon=10, chance=math.log(10))
    np.testing.assert_array_equal(s.worst_ratio, [1.0, 1.0])
    np.testing.assert_array_equal(s.steps_above_chance, [0, 0])
    np.testing.assert_array_equal(s.nonfinite, [0, 0])
    assert s.stable.all()


def test_step_up_after_horizon_matches_the_ema_closed_form():
    # loss c until the horizon H, 2c from step H + 1 on: the EMA (already at c)
    # is s_{H+k} = 2c - c 0.98^k, so the worst ratio is 2 - 0.98^K after K steps.
    c, horizon, after = 0.5, 20, 30
    curve = np.concatenate([np.full(horizon, c), np.full(after, 2 * c)])
    s = stability(curve[None], horizon=horizon, chance=0.9)
    assert s.worst_ratio[0] == pytest.approx(2 - 0.98 ** after, rel=1e-12)
    assert s.steps_above_chance[0] == after          # every step after the horizon is above 0.9
    assert s.stable[0] == (2 - 0.98 ** after <= STABLE_RATIO)


def test_nonfinite_losses_are_counted_and_unstable():
    curve = np.full((1, 40), 0.2)
    curve[0, 30] = np.nan
    curve[0, 35] = np.inf
    s = stability(curve, horizon=10, chance=2.3)
    assert s.worst_ratio[0] == np.inf
    assert s.nonfinite[0] == 2
    assert s.steps_above_chance[0] == 2               # non-finite counts as above chance
    assert not s.stable[0]


def test_no_chance_loss_gives_nan_and_bad_horizon_raises():
    s = stability(np.ones((1, 5)), horizon=5)
    assert np.isnan(s.steps_above_chance[0])
    with pytest.raises(ValueError, match="horizon 6"):
        stability(np.ones((1, 5)), horizon=6)
