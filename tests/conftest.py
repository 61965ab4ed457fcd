"""Every test starts with torch.distributions' default argument validation as the session
began: ``torch.compile`` turns it off process-wide, which would silently skip the checks that
later tests expect."""

import pytest
from torch.distributions import Distribution


@pytest.fixture(autouse=True)
def _restore_default_validation():
    default = Distribution._validate_args
    yield
    Distribution.set_default_validate_args(default)
