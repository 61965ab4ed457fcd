"""A stand-in for a local copy of klaswijk/sfess: the four sampler modules with the peers'
constructors, call shapes and return values (straight-through Gumbel-top-k draws), so that the
peers' code path runs without the real repository. SIMPLE's stand-in writes
``./simple_configs`` as the real one does."""

import textwrap

import pytest

_COMMON = textwrap.dedent("""
    import torch

    def straight_through(scores, k, n_samples):
        flat = scores[..., 0]  # [B, N]
        noisy = flat + torch.distributions.Gumbel(0.0, 1.0).sample((n_samples, *flat.shape))
        hard = torch.zeros_like(noisy).scatter_(-1, noisy.topk(k, dim=-1).indices, 1.0)
        soft = torch.softmax(flat, -1).expand_as(hard)
        return (hard - soft.detach() + soft)[..., None]  # [S, B, N, 1]
""")

_FILES = {
    "samplers/__init__.py": "",
    "samplers/common.py": _COMMON,
    "samplers/gumbel_scheme.py": """
from samplers.common import straight_through

class GumbelSampler:
    def __init__(self, k, n_samples, tau=0.1, hard=True):
        self.k, self.n_samples = k, n_samples

    def __call__(self, scores):
        return straight_through(scores, self.k, self.n_samples), None
""",
    "samplers/imle_scheme.py": """
from samplers.common import straight_through

class IMLESampler:
    def __init__(self, sample_k, device, n_samples, noise_scale, beta):
        self.k, self.n_samples = sample_k, n_samples

    def __call__(self, scores):
        return straight_through(scores, self.k, self.n_samples), None
""",
    "samplers/simple_scheme.py": """
import os

from samplers.common import straight_through

class SIMPLESampler:
    def __init__(self, k, device, n_samples=1):
        self.k, self.n_samples = k, n_samples

    def __call__(self, scores):
        os.makedirs("simple_configs", exist_ok=True)
        return straight_through(scores, self.k, self.n_samples), scores
""",
    "samplers/sfess/__init__.py": "",
    "samplers/sfess/sfess.py": """
import torch

class SFESSSampler:
    def __init__(self, k, device, n_samples=1):
        self.k, self.n_samples = k, n_samples

    def __call__(self, scores):
        flat = scores[..., 0]
        noisy = flat + torch.distributions.Gumbel(0.0, 1.0).sample((self.n_samples,
                                                                   *flat.shape))
        hard = torch.zeros_like(noisy).scatter_(-1, noisy.topk(self.k, dim=-1).indices, 1.0)
        log_p = (hard * flat.log_softmax(-1)).sum(-1)  # [S, B]
        return hard[..., None], log_p

def score_function_estimator(loss_samples, log_p_samples, estimator):
    if estimator is None:
        return loss_samples.mean()
    baseline = loss_samples.mean(0).detach() if estimator == "control-variate" else 0.0
    surrogate = log_p_samples * (loss_samples - baseline).detach()
    return (loss_samples + surrogate - surrogate.detach()).mean()
""",
}


@pytest.fixture
def fake_peers(tmp_path_factory):
    """The root folder of a stand-in klaswijk/sfess copy."""
    root = tmp_path_factory.mktemp("fake-sfess")
    for name, text in _FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
