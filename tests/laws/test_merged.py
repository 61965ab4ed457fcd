"""The paper's merged law: its conditional rows (``merged_conditional``) from the two engines'
canonical urns agree."""

import torch

from diffhypergeom.laws.merged import merged_conditional
from diffhypergeom.numerics.engines import FFTEngine, LogspaceEngine


def test_merged_conditional_rows_agree_on_both_engines():
    """The paper's merged-class rows over log-space tables and over tilted binomials."""
    population = torch.tensor([[60, 80, 50, 70]])
    theta = torch.tensor([[0.0, -0.5, -1.0, -0.2]], dtype=torch.float64)
    rows = torch.arange(0, 200)
    tables = [merged_conditional(engine(population, torch.tensor([199]), theta), 1, rows)
              .dense(81).exp() for engine in (LogspaceEngine, FFTEngine)]
    torch.testing.assert_close(tables[1], tables[0], rtol=0, atol=1e-12)
    assert torch.allclose(tables[0].sum(-1)[rows <= 199], torch.ones(1, dtype=torch.float64))
