"""The paper's exponential temperature schedule."""

import pytest

from diffhypergeom_studies.annealing import exponential_temperature


def test_schedule_endpoints_midpoint_and_hold():
    assert exponential_temperature(0, 10.0, 0.01, 100) == pytest.approx(10.0)
    assert exponential_temperature(50, 10.0, 0.01, 100) == pytest.approx((10.0 * 0.01) ** 0.5)
    assert exponential_temperature(100, 10.0, 0.01, 100) == pytest.approx(0.01)
    assert exponential_temperature(500, 10.0, 0.01, 100) == pytest.approx(0.01)


@pytest.mark.parametrize("args,match", [((0, 0.0, 0.01, 10), "tau_init and tau_final"),
                                        ((0, 1.0, -1.0, 10), "tau_init and tau_final"),
                                        ((-1, 1.0, 0.1, 10), "step must be >= 0")])
def test_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        exponential_temperature(*args)
