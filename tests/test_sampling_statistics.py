"""Samplers against exact probabilities: chi-square tests with fixed seeds and a
Benjamini-Hochberg decision over all tests of a group. Each group also has a power check: the
same procedure must reject the paper's merged sampler where it is wrong, so these tests fail if
the library's conditionals are replaced by the merged ones."""

import numpy as np
import pytest
import torch
from enumeration import grid_marginals_3, merged_process_log_pmf, moments
from goodness_of_fit import any_rejected, chisquare_pvalue, marginal_pvalues

from diffhypergeom import MergedFisherNCHypergeometric as Merged
from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH

ALPHA = 0.01
PAPER_URN = ([200, 200, 200], 180)


def _samplers(d: MFNCH, n: int) -> dict[str, np.ndarray]:
    torch.manual_seed(1234)
    with torch.no_grad():
        return {
            "sample": d.sample((n,)).long().numpy(),
            "sample permuted": d.sample((n,), permute=True).long().numpy(),
            "rsample gumbel": d.rsample((n,), gradient="gumbel", permute=False).long().numpy(),
            "rsample gumbel permuted": d.rsample((n,), gradient="gumbel", permute=True).long()
            .numpy(),
        }


@pytest.mark.parametrize("w2", [2.0, 10.0])
def test_marginals_of_all_samplers_match_exact_paper_urn(w2):
    population, draws = PAPER_URN
    weights = [1.0, w2, 1.0]
    exact = grid_marginals_3(population, draws, weights)
    d = MFNCH(torch.tensor(population), draws, weights=torch.tensor(weights))
    pvalues = []
    for samples in _samplers(d, 20_000).values():
        assert bool((samples.sum(-1) == draws).all())
        pvalues += marginal_pvalues(samples, exact)
    assert not any_rejected(pvalues, ALPHA), pvalues

    # power: the same test on the paper's merged sampler rejects
    torch.manual_seed(1234)
    merged = Merged(torch.tensor(population), draws, weights=torch.tensor(weights)
                    ).sample((20_000,)).long().numpy()
    assert any_rejected(marginal_pvalues(merged, exact), ALPHA)


@pytest.mark.parametrize("population,draws,weights", [
    ([5, 7, 4], 8, [1.0, 4.0, 0.25]),
    ([3, 6, 2, 5], 7, [1e-3, 1.0, 1e3, 3.0]),
])
def test_joint_distribution_of_samplers_matches_enumeration(population, draws, weights):
    ref = moments(population, draws, weights)
    index = {tuple(p): j for j, p in enumerate(ref["points"])}
    d = MFNCH(torch.tensor(population), draws, weights=torch.tensor(weights))
    pvalues = []
    for samples in _samplers(d, 20_000).values():
        observed = np.bincount([index[tuple(s)] for s in samples], minlength=len(index))
        pvalues.append(chisquare_pvalue(observed, ref["p"]))
    assert not any_rejected(pvalues, ALPHA), pvalues


@pytest.mark.parametrize("engine", ["logspace", "fft"])
def test_merged_law_log_prob_is_the_merged_process(engine):
    population, draws, weights = [5, 7, 4], 8, [1.0, 6.0, 0.5]
    ref = moments(population, draws, weights)
    expected = merged_process_log_pmf(ref["points"], population, weights)
    d = Merged(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=torch.float64),
               engine=engine)
    got = d.log_prob(torch.from_numpy(ref["points"])).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # not the Fisher law's (the conformance of the members to this law: tests/test_conformance)
    assert np.abs(got - ref["log_p"]).max() > 0.1


def test_merged_law_samples_match_the_merged_process():
    population, draws, weights = [5, 7, 4], 8, [1.0, 6.0, 0.5]
    ref = moments(population, draws, weights)
    merged = np.exp(merged_process_log_pmf(ref["points"], population, weights))
    assert merged.sum() == pytest.approx(1.0, abs=1e-9)
    index = {tuple(p): j for j, p in enumerate(ref["points"])}
    d = Merged(torch.tensor(population), draws, weights=torch.tensor(weights))
    torch.manual_seed(99)
    pvalues = []
    for samples in (d.sample((20_000,)).long(), d.rsample((20_000,)).long()):
        observed = np.bincount([index[tuple(s)] for s in samples.numpy()],
                               minlength=len(index))
        pvalues.append(chisquare_pvalue(observed, merged))
        # power: the merged process is not the MFNCH
        pvalues_exact = chisquare_pvalue(observed, ref["p"])
        assert pvalues_exact < 1e-6
    assert not any_rejected(pvalues, ALPHA), pvalues


def test_batched_weight_vectors_each_sample_their_own_distribution():
    population, draws = [6, 9], 7
    weights = torch.tensor([[1.0, 1.0], [0.05, 1.0], [8.0, 0.5]])
    d = MFNCH(torch.tensor(population), draws, weights=weights)
    torch.manual_seed(7)
    samples = d.sample((20_000,)).long().numpy()
    relaxed = d.rsample((20_000,)).round().long().numpy()
    assert samples.shape == (20_000, 3, 2)
    pvalues = []
    for b, w in enumerate(weights.tolist()):
        exact = moments(population, draws, w)["marginals"][0]
        pvalues += marginal_pvalues(samples[:, b], [exact])
        pvalues += marginal_pvalues(relaxed[:, b], [exact])
    assert not any_rejected(pvalues, ALPHA), pvalues
