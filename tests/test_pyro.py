"""``diffhypergeom.pyro``: the distribution at observed, latent and enumerated Pyro sites, Pyro's
shape helpers, ``enumerate_support``, and that ``import diffhypergeom`` stays free of Pyro."""

import itertools
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pyro = pytest.importorskip("pyro")
import pyro.distributions as dist  # noqa: E402
from pyro.infer import SVI, Predictive, Trace_ELBO, TraceEnum_ELBO  # noqa: E402
from pyro.optim import ClippedAdam  # noqa: E402

import diffhypergeom.numerics.support  # noqa: E402
from diffhypergeom import MultivariateFisherNCHypergeometric as CoreMFNCH  # noqa: E402
from diffhypergeom import pyro as dh_pyro  # noqa: E402
from diffhypergeom.pyro import MultivariateFisherNCHypergeometric as MFNCH  # noqa: E402

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The urns here are tiny: intra-op threads only add synchronisation (5x slower on a busy
    2-core machine). The setting is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def brute_support(population, draws):
    return [list(x) for x in itertools.product(*[range(m + 1) for m in population])
            if sum(x) == draws]


# ------------------------------------------------------------------ observed sites
def test_svi_recovers_the_weights_from_observed_sites():
    """Maximum likelihood by SVI: the error of the centred logits, measured in the Fisher
    information (the covariance of x, per observation), is a chi^2 with c - 1 dof."""
    population, draws, true_logits = torch.tensor([20, 20, 20]), 25, [0.0, 1.0, -0.5]
    truth = MFNCH(population, draws, logits=torch.tensor(true_logits, dtype=F64))
    torch.manual_seed(0)
    data = truth.sample((200,))                                              # [200, 3]

    def model(data):
        logits = pyro.param("logits", torch.zeros(3, dtype=F64))
        with pyro.plate("data", len(data)):
            pyro.sample("x", MFNCH(population, draws, logits=logits), obs=data)

    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    svi = SVI(model, lambda data: None, ClippedAdam({"lr": 0.1, "lrd": 0.97}), Trace_ELBO())
    for _ in range(100):
        svi.step(data)
    fitted = pyro.param("logits").detach()

    # converged: the score N (mean(data) - E[x]) of the fitted law is ~0
    fitted_mean = CoreMFNCH(population, draws, logits=fitted).mean
    torch.testing.assert_close(fitted_mean, data.mean(0), atol=0.01, rtol=0)

    fisher = truth.covariance_matrix                                         # [3, 3]
    quantile = -2 * math.log(1e-4)        # chi^2 with 2 dof: P(> 18.4) = 1e-4

    def statistic(logits):
        d = (logits - logits.mean()) - (truth.logits - truth.logits.mean())
        return float(len(data) * d @ fisher @ d)

    assert statistic(fitted) <= quantile
    assert statistic(torch.zeros(3, dtype=F64)) > 10 * quantile  # the bound can fail


# ------------------------------------------------------------------ latent sites
M_LATENT, N_LATENT = torch.tensor([5, 5, 5]), 6
Y_LATENT = torch.tensor([3.0, 2.5, 3.5], dtype=F64)
PRIOR = torch.zeros(3, dtype=F64)


def latent_model():
    x = pyro.sample("x", MFNCH(M_LATENT, N_LATENT, logits=PRIOR))
    with pyro.plate("obs", len(Y_LATENT)):
        pyro.sample("y", dist.Normal(x[..., 0] - x[..., 2], 1.0), obs=Y_LATENT)


def exact_log_joint(points):
    """``log p(x) + log p(y | x)`` on a list of points ``[S, 3]``."""
    prior = MFNCH(M_LATENT, N_LATENT, logits=PRIOR).log_prob(points)
    loc = (points[:, 0] - points[:, 2]).to(F64).unsqueeze(-1)
    return prior + dist.Normal(loc, 1.0).log_prob(Y_LATENT).sum(-1)


def exact_elbo(q_logits):
    """``E_q[log p(x, y) - log q(x)]`` summed over the support."""
    q = MFNCH(M_LATENT, N_LATENT, logits=q_logits)
    points = q.enumerate_support()
    log_q = q.log_prob(points)
    return (log_q.exp() * (exact_log_joint(points) - log_q)).sum()


def test_svi_at_a_latent_site_with_a_guide_of_the_same_family():
    """The guide draws with ``rsample`` (``has_rsample_(True)``: pathwise gradients of the
    exact mean in Trace_ELBO); its exact ELBO ends near the best the family can do, found by
    maximising the exact ELBO over the support. With this seed the gap is 0.016 nats, against
    13.4 at the start; over seeds 0-4 it was 0.005-0.044 (0.06-0.09 with shorter schedules):
    0.15 allows for the bias of ``rsample`` and the SGD noise of the last steps. The
    fitted mean was 0.08-0.31 from the best guide's (bound 0.4)."""
    assert not MFNCH(M_LATENT, N_LATENT, logits=PRIOR).has_rsample  # the Pyro default
    assert CoreMFNCH(M_LATENT, N_LATENT, logits=PRIOR).has_rsample

    def guide():
        q = pyro.param("q", torch.zeros(3, dtype=F64))
        pyro.sample("x", MFNCH(M_LATENT, N_LATENT, logits=q).has_rsample_(True))

    # the exact posterior and the best guide of the family, by enumeration
    points = MFNCH(M_LATENT, N_LATENT, logits=PRIOR).enumerate_support()
    log_joint = exact_log_joint(points)
    posterior_mean = (log_joint - log_joint.logsumexp(0)).exp() @ points.to(F64)
    best = torch.zeros(3, dtype=F64, requires_grad=True)
    lbfgs = torch.optim.LBFGS([best], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        lbfgs.zero_grad()
        loss = -exact_elbo(best)
        loss.backward()
        return loss

    lbfgs.step(closure)
    best = best.detach()
    best_mean = MFNCH(M_LATENT, N_LATENT, logits=best).mean

    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    elbo = Trace_ELBO(num_particles=8, vectorize_particles=True, max_plate_nesting=1)
    svi = SVI(latent_model, guide, ClippedAdam({"lr": 0.1, "lrd": 0.99}), elbo)
    losses = [svi.step() for _ in range(150)]
    fitted = pyro.param("q").detach()
    fitted_mean = MFNCH(M_LATENT, N_LATENT, logits=fitted).mean
    prior_mean = MFNCH(M_LATENT, N_LATENT, logits=PRIOR).mean

    start, end, optimum = (float(exact_elbo(q)) for q in (PRIOR, fitted, best))
    assert optimum - start > 10                      # there is much to learn ...
    assert optimum - end < 0.15                      # ... and SVI learned it
    assert sum(losses[-20:]) < sum(losses[:20]) - 20 * 2   # Pyro's own loss fell too
    # the mean moved to the best guide's, and toward the exact posterior mean (which the
    # family cannot reach: the Normal likelihood adds a quadratic term; the best guide's mean
    # is 0.87 away from it, the prior's 1.88)
    assert (fitted_mean - best_mean).norm() < 0.4
    assert (fitted_mean - posterior_mean).norm() < 0.6 * (prior_mean - posterior_mean).norm()


# ------------------------------------------------------------------ enumeration
def test_trace_enum_elbo_marginalises_a_small_urn_exactly():
    population, draws = [2, 2, 3], 3
    logits = torch.tensor([[0.0, 0.5, -0.5], [0.3, -0.2, 0.0]], dtype=F64)   # two urns
    y = torch.tensor([[1.5, 0.5, -1.0], [1.0, 2.0, 0.0]], dtype=F64)          # [urns, obs]

    def model(y):
        with pyro.plate("urns", 2, dim=-2):
            x = pyro.sample("x", MFNCH(population, draws, logits=logits.unsqueeze(-2)))
            with pyro.plate("obs", 3, dim=-1):
                pyro.sample("y", dist.Normal(x[..., 0] - x[..., 2], 2.0), obs=y)

    logits.requires_grad_()
    loss = TraceEnum_ELBO(max_plate_nesting=2).differentiable_loss(
        pyro.infer.config_enumerate(model, "parallel"), lambda y: None, y)
    (grad,) = torch.autograd.grad(loss, logits)

    points = torch.tensor(brute_support(population, draws))                  # [S, 3]
    exact = 0.0
    for b in range(2):
        log_prior = CoreMFNCH(population, draws, logits=logits[b]).log_prob(points)
        loc = (points[:, 0] - points[:, 2]).to(F64).unsqueeze(-1)
        log_joint = log_prior + dist.Normal(loc, 2.0).log_prob(y[b]).sum(-1)
        # every point holds > 1e-4 of the posterior: leaving out any moves the result > 1e-4
        assert float((log_joint - log_joint.logsumexp(0)).exp().min().detach()) > 1e-4
        exact = exact + log_joint.logsumexp(0)
    assert -loss.item() == pytest.approx(exact.item(), abs=1e-6)
    (exact_grad,) = torch.autograd.grad(-exact, logits)      # and so are its gradients
    torch.testing.assert_close(grad, exact_grad, atol=1e-6, rtol=0)


def test_enumerate_support_shape_and_content():
    population, draws = torch.tensor([3, 0, 4, 2]), 5
    logits = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
    d = MFNCH(population, draws, logits=logits)
    expected = brute_support([3, 0, 4, 2], 5)                                 # lexicographic
    values = d.enumerate_support(expand=False)
    assert values.shape == (len(expected), 1, 1, 4) and values.dtype == logits.dtype
    assert values.reshape(-1, 4).tolist() == expected
    full = d.enumerate_support()
    assert full.shape == (len(expected), 2, 3, 4)
    torch.testing.assert_close(full, values.expand(-1, 2, 3, 4))
    torch.testing.assert_close(d.log_prob(full).exp().sum(0), torch.ones(2, 3))
    # one class, and an empty draw
    assert MFNCH([7], 3, logits=[0.0]).enumerate_support().tolist() == [[3]]
    assert MFNCH([2, 3], 0, logits=[0.0, 0.0]).enumerate_support().tolist() == [[0, 0]]
    # in a masked or expanded distribution too
    assert d.expand_by([5]).enumerate_support().shape == (len(expected), 5, 2, 3, 4)
    assert d.mask(torch.tensor(True)).enumerate_support(expand=False).shape == values.shape


@pytest.mark.parametrize("population,draws", [
    ([20, 20, 20], 25), ([3, 0, 5, 2], 4), ([7], 3), ([1, 1, 1, 1, 1], 5), ([6, 2, 9], 0),
    ([4, 4, 4], 13), ([2, 5, 3, 1], 6)])
def test_support_size_matches_brute_force(population, draws):
    assert dh_pyro.support_size(population, draws) == (len(brute_support(population, draws)),
                                                       True)


def test_support_size_gives_up_on_huge_supports_quickly():
    size, exact = dh_pyro.support_size([10**9, 10**9, 10**9], 10**9, stop_above=100)
    assert not exact and size > 100
    size, exact = dh_pyro.support_size([1] * 5000, 2500, stop_above=1000)
    assert not exact and size > 1000


def test_enumerate_support_refuses_large_supports_and_mixed_urns(monkeypatch):
    d = MFNCH([20, 20, 20], 25, logits=torch.zeros(3), max_support=100)
    with pytest.raises(ValueError, match=r"has 306 points, above the limit of 100.*max_support"):
        d.enumerate_support()
    assert d.expand([2]).max_support == 100                       # the limit survives expand
    with pytest.raises(ValueError, match="306 points"):
        d.expand([2]).enumerate_support()
    assert MFNCH([20, 20, 20], 25, logits=torch.zeros(3), max_support=306
                 ).enumerate_support().shape == (306, 3)
    monkeypatch.setattr(diffhypergeom.numerics.support, "MAX_ENUMERATE_SUPPORT", 300)
    with pytest.raises(ValueError, match="MAX_ENUMERATE_SUPPORT"):
        MFNCH([20, 20, 20], 25, logits=torch.zeros(3)).enumerate_support()
    with pytest.raises(ValueError, match="at least"):
        MFNCH([10**6] * 3, 10**6, logits=torch.zeros(3)).enumerate_support()
    with pytest.raises(ValueError, match="same population and draws"):
        MFNCH([[3, 3], [3, 4]], 2, logits=torch.zeros(2)).enumerate_support()
    with pytest.raises(ValueError, match="same population and draws"):
        MFNCH([3, 3], torch.tensor([1, 2]), logits=torch.zeros(2)).enumerate_support()
    with pytest.raises(ValueError, match="max_support"):
        MFNCH([3, 3], 1, logits=torch.zeros(2), max_support=0)


# ------------------------------------------------------------------ Pyro's shape helpers
def test_predictive_shapes_match_pyro_multinomial():
    def make_model(family):
        def model(y=None):
            with pyro.plate("urns", 4):
                x = pyro.sample("x", family())
                pyro.sample("y", dist.Normal(x[..., 0], 1.0), obs=y)
        return model

    ours = make_model(lambda: MFNCH(torch.tensor([5, 5, 5]), 6, logits=torch.zeros(3)))
    theirs = make_model(lambda: dist.Multinomial(6, logits=torch.zeros(3)))
    for parallel in (False, True):
        pyro.set_rng_seed(0)
        a = Predictive(ours, num_samples=7, parallel=parallel)()
        b = Predictive(theirs, num_samples=7, parallel=parallel)()
        assert set(a) == set(b) == {"x", "y"}
        assert a["x"].shape == b["x"].shape == (7, 4, 3), parallel
        assert a["y"].shape == b["y"].shape == (7, 4), parallel
        assert bool((a["x"].sum(-1) == 6).all()) and bool((a["x"] <= 5).all())


def test_latent_site_draws_and_scores():
    d = MFNCH(torch.tensor([5, 5, 5]), 6, logits=torch.zeros(3))
    trace = pyro.poutine.trace(lambda: pyro.sample("x", d)).get_trace()
    x = trace.nodes["x"]["value"]
    assert x.shape == (3,) and int(x.sum()) == 6
    trace.compute_log_prob()
    torch.testing.assert_close(trace.nodes["x"]["log_prob"], d.log_prob(x))


def test_expand_by_to_event_and_mask():
    d = MFNCH(torch.tensor([4, 5, 6]), 7, logits=torch.zeros(2, 3))
    e = d.expand_by([5])
    assert type(e) is MFNCH and e.batch_shape == (5, 2) and e.event_shape == (3,)
    assert type(d.expand([4, 2])) is MFNCH and d.expand([4, 2]).sample().shape == (4, 2, 3)
    x = e.sample()
    assert x.shape == (5, 2, 3) and e.rsample((3,)).shape == (3, 5, 2, 3)

    independent = e.to_event(1)
    assert independent.batch_shape == (5,) and independent.event_shape == (2, 3)
    torch.testing.assert_close(independent.log_prob(x), e.log_prob(x).sum(-1))
    assert e.to_event().batch_shape == () and e.to_event().event_shape == (5, 2, 3)

    keep = torch.tensor([True, False])
    masked = d.mask(keep)
    assert masked.batch_shape == (2,) and masked.event_shape == (3,)
    x = d.sample((4,))
    expected = torch.stack([d.log_prob(x)[:, 0], torch.zeros(4)], -1)
    torch.testing.assert_close(masked.log_prob(x), expected)
    assert masked.expand_by([3]).batch_shape == (3, 2)
    assert MFNCH.infer_shapes(population=(2, 1, 3), draws=(4,), logits=(3,)) == \
        ((2, 4), (3,))


def test_copies_keep_the_pyro_class_and_settings():
    d = MFNCH([4, 5, 6], 7, logits=torch.zeros(3), max_support=50, engine="logspace")
    d.has_rsample_(True)
    e = d.expand([2])
    assert type(e) is MFNCH and e.max_support == 50 and e.engine == "logspace"
    assert e.has_rsample and not e().requires_grad
    # the Gumbel gradient permutes the classes via a copy
    assert d.rsample(gradient="gumbel").shape == (3,)
    assert d.sample(permute=True).shape == (3,)
    relaxed = dh_pyro.RelaxedMultivariateFisherNCHypergeometric([4, 5, 6], 7,
                                                                logits=torch.zeros(3),
                                                                temperature=0.3)
    copy = relaxed.expand([2])
    assert type(copy) is type(relaxed) and copy.temperature == 0.3
    assert copy.rsample().shape == (2, 3)



def test_values_have_the_floating_dtype_of_the_logits():
    """sample, rsample and enumerate_support agree (Pyro takes a site's value from any)."""
    for dtype in (torch.float32, F64):
        d = MFNCH([4, 5, 6], 7, logits=torch.zeros(3, dtype=dtype))
        for value in (d.sample((2,)), d.rsample((2,)), d(), d.enumerate_support()):
            assert value.dtype == dtype
        torch.testing.assert_close(d.sample((50,)).sum(-1), torch.full((50,), 7.0, dtype=dtype))


# ------------------------------------------------------------------ documentation
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "index.md"


@pytest.mark.parametrize("where", ["guide", "docstring"])
def test_examples_run_and_print_the_exact_evidence(where, capsys):
    if where == "guide":
        section = GUIDE.read_text().split("## Pyro", 1)[1].split("\n## ", 1)[0]
        code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    else:
        code = textwrap.dedent(dh_pyro.__doc__.split("::\n", 1)[1])
    assert len(code.strip().splitlines()) == 6
    exec(compile(code, where, "exec"), {})
    printed = float(capsys.readouterr().out.split()[-1])
    points = torch.tensor(brute_support([4, 4, 4], 5))
    log_joint = (CoreMFNCH([4, 4, 4], 5, weights=[1, 3, 0.5]).log_prob(points).to(F64)
                 + dist.Normal(points[:, 1].to(F64), 1.0).log_prob(torch.tensor(3.0, dtype=F64)))
    assert printed == pytest.approx(float(log_joint.logsumexp(0)), abs=1e-5)


# ------------------------------------------------------------------ import hygiene
def test_importing_the_core_does_not_import_pyro():
    code = ("import sys, diffhypergeom, diffhypergeom.laws.fisher\n"
            "assert 'pyro' not in sys.modules, sorted(m for m in sys.modules if 'pyro' in m)\n"
            "import diffhypergeom.pyro\n"
            "assert 'pyro' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_default_rsample_detailed_in_the_pyro_class():
    """The Pyro class's ``sample`` returns float counts; the mean gradient's one-hot vectors
    still come from integer draws."""
    logits = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    d = MFNCH(torch.tensor([3, 4, 5]), 6, logits=logits)
    draw = d.rsample_detailed((4,))
    assert draw.one_hot.shape == (4, 3, 6)
    torch.testing.assert_close(draw.one_hot.argmax(-1).to(draw.counts.dtype),
                               draw.counts.detach())
    draw.one_hot[..., 0, 2].sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


GRADIENT_SITES = {
    "fisher-mean": (dh_pyro.MultivariateFisherNCHypergeometric, {}),
    "fisher-gumbel": (dh_pyro.MultivariateFisherNCHypergeometric,
                      {"gradient": "gumbel", "temperature": 0.5, "permute": False}),
    "fisher-gumbel-rao": (dh_pyro.MultivariateFisherNCHypergeometric,
                          {"gradient": "gumbel-rao", "temperature": 0.5, "rao_samples": 3}),
    "merged-gumbel": (dh_pyro.MergedFisherNCHypergeometric, {"temperature": 0.5}),
    "merged-gumbel-rao": (dh_pyro.MergedFisherNCHypergeometric,
                          {"gradient": "gumbel-rao", "temperature": 0.5, "rao_samples": 3}),
    "wallenius-mean": (dh_pyro.MultivariateWalleniusNCHypergeometric, {}),
}


def _latent_urn_model(law, options, logits):
    """A latent urn ``x`` observed through ``y ~ N(x_1 - x_2, 1)``, and a guide of the same
    family whose logits are learnt, reparameterised with the gradient in ``options``."""
    population, draws = torch.tensor([3, 3, 3]), 4

    def model():
        x = pyro.sample("x", law(population, draws, logits=torch.zeros(3, dtype=F64)))
        pyro.sample("y", dist.Normal(x[..., 1] - x[..., 2], 1.0), obs=torch.tensor(2.0, dtype=F64))

    def guide():
        pyro.sample("x", law(population, draws, logits=logits, **options).has_rsample_(True))

    def by_hand():
        q = law(population, draws, logits=logits, **options)
        x = q.rsample()
        p = law(population, draws, logits=torch.zeros(3, dtype=F64))
        y = dist.Normal(x[..., 1] - x[..., 2], 1.0).log_prob(torch.tensor(2.0, dtype=F64))
        return -(p.log_prob(x) + y - q.log_prob(x))

    return model, guide, by_hand


@pytest.mark.parametrize("site", list(GRADIENT_SITES))
def test_every_gradient_reaches_a_pyro_site_under_svi(site):
    """The gradient chosen in the constructor is the one ``Trace_ELBO`` differentiates at a
    reparameterised site (Pyro calls ``rsample()`` with no keywords): the same draws give the
    same gradient as the ELBO written by hand with that law's ``rsample``; and SVI steps run."""
    law, options = GRADIENT_SITES[site]
    logits = torch.tensor([0.3, -0.2, 0.1], dtype=F64, requires_grad=True)
    model, guide, by_hand = _latent_urn_model(law, options, logits)
    pyro.set_rng_seed(3)
    (through_pyro,) = torch.autograd.grad(Trace_ELBO().differentiable_loss(model, guide), logits)
    pyro.set_rng_seed(3)
    (written_out,) = torch.autograd.grad(by_hand(), logits)
    assert torch.allclose(through_pyro, written_out, rtol=1e-10, atol=1e-12)
    assert bool(through_pyro.abs().sum() > 0)
    pyro.clear_param_store()
    start = logits.detach().clone()

    def learnt_guide():
        pyro.param("logits", start.clone())
        guide_logits = pyro.param("logits")
        pyro.sample("x", law(torch.tensor([3, 3, 3]), 4, logits=guide_logits,
                             **options).has_rsample_(True))

    svi = SVI(model, learnt_guide, ClippedAdam({"lr": 0.05}), Trace_ELBO())
    losses = [svi.step() for _ in range(3)]
    assert all(math.isfinite(loss) for loss in losses)
    assert not torch.equal(pyro.param("logits").detach(), start)


def test_the_constructor_gradient_changes_what_a_pyro_site_gets():
    """Two guides that differ only in ``gradient=`` give different gradients on the same
    draws: the choice is not lost on the way to the site."""
    grads = {}
    for name in ("fisher-mean", "fisher-gumbel"):
        law, options = GRADIENT_SITES[name]
        logits = torch.tensor([0.3, -0.2, 0.1], dtype=F64, requires_grad=True)
        model, guide, _ = _latent_urn_model(law, options, logits)
        pyro.set_rng_seed(5)
        (grads[name],) = torch.autograd.grad(
            Trace_ELBO().differentiable_loss(model, guide), logits)
    assert not torch.allclose(grads["fisher-mean"], grads["fisher-gumbel"])


def test_random_partition_takes_its_temperature_in_the_constructor():
    logits = torch.zeros(3, dtype=F64, requires_grad=True)
    d = dh_pyro.RandomPartition(torch.zeros(2, dtype=F64), logits, temperature=0.25)
    pyro.set_rng_seed(0)
    (from_constructor,) = torch.autograd.grad(
        (d.rsample((4,)) * torch.arange(3.0, dtype=F64)).sum(), logits)
    pyro.set_rng_seed(0)
    plain = dh_pyro.RandomPartition(torch.zeros(2, dtype=F64), logits)
    (per_call,) = torch.autograd.grad(
        (plain.rsample((4,), temperature=0.25) * torch.arange(3.0, dtype=F64)).sum(), logits)
    assert torch.allclose(from_constructor, per_call)
