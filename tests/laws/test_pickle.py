"""Every law pickles, ``torch.save``s and deep-copies before and after use (multiprocessing data
loaders and checkpoints hold distributions), and the copy gives the same numbers."""

import copy
import io
import pickle

import pytest
import torch

from diffhypergeom import (
    MergedFisherNCHypergeometric,
    MultivariateFisherNCHypergeometric,
    MultivariateWalleniusNCHypergeometric,
    RandomPartition,
    RelaxedMultivariateFisherNCHypergeometric,
)
from diffhypergeom.subsets import gumbel_top_k, k_subset

F64 = torch.float64
LAWS = {
    "fisher-auto": lambda: MultivariateFisherNCHypergeometric(
        torch.tensor([30000, 50000, 20000]), 40000, logits=torch.zeros(3, dtype=F64)),
    "fisher-logspace": lambda: MultivariateFisherNCHypergeometric(
        torch.tensor([3, 5, 2]), 4, logits=torch.tensor([0.1, 0.0, -0.3], dtype=F64),
        engine="logspace"),
    "fisher-fft": lambda: MultivariateFisherNCHypergeometric(
        torch.tensor([3, 5, 2]), 4, logits=torch.tensor([0.1, 0.0, -0.3], dtype=F64),
        engine="fft"),
    "k-subset-rejection": lambda: k_subset(torch.linspace(-1, 1, 12, dtype=F64), 4),
    "k-subset-tree": lambda: k_subset(torch.linspace(-3, 3, 1000, dtype=F64), 50),
    "gumbel-top-k": lambda: gumbel_top_k(torch.linspace(-1, 1, 12, dtype=F64), 4),
    "merged": lambda: MergedFisherNCHypergeometric(
        torch.tensor([3, 5, 2]), 4, logits=torch.tensor([0.1, 0.0, -0.3], dtype=F64)),
    "wallenius": lambda: MultivariateWalleniusNCHypergeometric(
        torch.tensor([3, 5, 2]), 4, logits=torch.tensor([0.1, 0.0, -0.3], dtype=F64)),
    "relaxed": lambda: RelaxedMultivariateFisherNCHypergeometric(
        torch.tensor([3, 5, 2]), 4, logits=torch.zeros(3, dtype=F64), temperature=0.5),
    "partition": lambda: RandomPartition(torch.zeros(2, dtype=F64), torch.zeros(3, dtype=F64)),
}


def _use(d):
    d.sample((3,))
    if not isinstance(d, RelaxedMultivariateFisherNCHypergeometric):
        d.log_prob(d.sample())
    if isinstance(d, MultivariateFisherNCHypergeometric):
        d.mean, d.variance, d.rsample((2,))  # noqa: B018


def _round_trips(d):
    copied = pickle.loads(pickle.dumps(d))
    buffer = io.BytesIO()
    torch.save(d, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    return copied, saved, copy.deepcopy(d)


@pytest.mark.parametrize("law", list(LAWS))
@pytest.mark.parametrize("used", [False, True], ids=["fresh", "used"])
def test_every_law_pickles_before_and_after_use(law, used):
    d = LAWS[law]()
    if used:
        _use(d)
    for twin in _round_trips(d):  # pickle, torch.save and copy.deepcopy
        assert type(twin) is type(d) and twin.batch_shape == d.batch_shape
        x = twin.sample((2,))
        assert x.shape == d.sample((2,)).shape
        if not isinstance(d, RelaxedMultivariateFisherNCHypergeometric):
            assert torch.equal(twin.log_prob(x), d.log_prob(x))
