"""torch.func and torch.compile: with ``validate_args=False`` nothing reads the logits' values
in Python, so ``vmap`` over logits works for log_prob, the moments and rsample, and
``torch.compile(fullgraph=True)`` compiles ``log_prob``; the samplers run eagerly inside
compiled code."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torch.func import vmap

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom import RelaxedMultivariateFisherNCHypergeometric as Relaxed

POP = torch.tensor([5, 7, 4])
LOGITS = torch.tensor([[0.0, 1.0, -0.7], [0.3, -0.2, 0.5], [-1.0, 0.0, 2.0]],
                      dtype=torch.float64)
X = torch.tensor([2, 3, 1])


def _dist(logits, **kwargs):
    return MFNCH(POP, 6, logits=logits, validate_args=False, **kwargs)


@pytest.mark.parametrize("member", ["log_prob", "mean", "entropy", "log_normalizer"])
def test_vmap_over_logits_matches_a_loop(member):
    def f(logits):
        d = _dist(logits)
        if member == "log_prob":
            return d.log_prob(X)
        value = getattr(d, member)
        return value() if callable(value) else value

    torch.testing.assert_close(vmap(f)(LOGITS), torch.stack([f(row) for row in LOGITS]))


@pytest.mark.parametrize("hard", [True, False])
def test_vmap_rsample(hard):
    torch.manual_seed(0)

    def draw(logits):
        if hard:
            return _dist(logits).rsample((50,), gradient="gumbel", temperature=0.5,
                                         permute=False)
        return Relaxed(POP, 6, logits=logits, temperature=0.5, permute=False,
                       validate_args=False).rsample((50,))

    x = vmap(draw, randomness="different")(LOGITS)
    assert x.shape == (3, 50, 3)
    torch.testing.assert_close(x.sum(-1), torch.full((3, 50), 6.0, dtype=torch.float64))
    assert (x >= 0).all() and (x <= POP).all()
    if hard:
        assert (x == x.round()).all()


def test_fft_engine_under_vmap_says_why_not():
    with pytest.raises(ValueError, match="engine='fft' cannot run under torch.func"):
        vmap(lambda logits: _dist(logits, engine="fft").mean)(LOGITS)


@pytest.mark.parametrize("engine", ["logspace", "fft"])
def test_compile_log_prob_fullgraph(engine):
    torch._dynamo.reset()
    d = _dist(LOGITS[0], engine=engine)
    compiled = torch.compile(d.log_prob, fullgraph=True)
    values = torch.tensor([[2, 3, 1], [1, 4, 1], [5, 1, 0]])
    torch.testing.assert_close(compiled(values), d.log_prob(values), rtol=1e-12, atol=1e-12)


def test_rsample_inside_compiled_code():
    torch._dynamo.reset()
    logits = LOGITS[0].clone().requires_grad_()

    def loss(logits):
        x = MFNCH(POP, 6, logits=logits).rsample((100,), gradient="gumbel", temperature=0.5)
        return (x * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum()

    torch.compile(loss)(logits).backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad != 0).any()


def test_import_is_light_and_a_first_call_inside_compiled_code_works():
    """``import diffhypergeom`` does not load ``torch._dynamo`` (about 2 s); the samplers' first
    call, made inside ``torch.compile``d code, still runs them eagerly (fresh interpreter)."""
    code = textwrap.dedent("""
        import sys, torch
        import diffhypergeom
        assert "torch._dynamo" not in sys.modules, "import diffhypergeom loaded torch._dynamo"
        from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
        logits = torch.tensor([0.0, 1.0, -0.7], dtype=torch.float64, requires_grad=True)

        def loss(logits):
            x = MFNCH(torch.tensor([5, 7, 4]), 6, logits=logits).rsample((100,))
            return (x * torch.tensor([1.0, 2.0, 3.0], dtype=x.dtype)).sum(), x.detach()

        out, x = torch.compile(loss)(logits)
        out.backward()
        assert torch.isfinite(logits.grad).all() and (logits.grad != 0).any()
        print(x.sum(-1).unique().tolist())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[6.0]", done.stdout
