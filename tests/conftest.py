"""Every test starts with torch.distributions' default argument validation as the session
began: ``torch.compile`` turns it off process-wide, which would silently skip the checks that
later tests expect.

Hypothesis profiles: ``ci`` (the default: a fixed seed and few examples, for CI's minutes)
and ``long`` (``pytest --hypothesis-profile=long``: many more, still derandomised)."""

import pytest
from hypothesis import HealthCheck, settings
from torch.distributions import Distribution

settings.register_profile("ci", max_examples=12, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=300, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _restore_default_validation():
    default = Distribution._validate_args
    yield
    Distribution.set_default_validate_args(default)
