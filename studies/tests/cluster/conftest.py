"""One torch thread for the clustering tests: tiny models run faster without intra-op
threads, especially on a shared 2-core machine."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
