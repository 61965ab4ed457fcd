"""The peers, imported from a local copy of klaswijk/sfess (the code of Wijk et al., ICLR 2025)
given by path, and called as that repository calls them (``benchmarks/bench_estimators.py``
does the same): a sampler takes scores ``[B, N, 1]`` and returns draws ``[S, B, N, 1]`` (and,
for SFESS, their log-probability ``[S, B]``); the loss is the sample mean of ``f``, or
``score_function_estimator`` for SFESS. Nothing of theirs is copied here.

- ``SIMPLE``: ``SIMPLESampler`` (exact marginals of the k-subset law by a compiled circuit,
  Gumbel-top-k draws, straight-through to the marginals). It writes its circuits to
  ``./simple_configs`` and compiles with ``torch.compile`` on first use at each shape (about a
  minute on 2 CPU cores): run it in a working directory of your choice (``working_directory``),
  and warm it up off the clock.
- ``SFESS`` and ``SFESS-cv``: ``SFESSSampler`` (Gumbel-top-k draws scored by the conditional
  Poisson log-probability), with ``"reinforce"`` or ``"control-variate"``. Note: that control
  variate's "leave-one-out" baseline, ``loss[~arange(S)].mean(0)``, is the mean over all ``S``
  draws, the draw itself included.
- ``I-MLE``: ``IMLESampler(k, cpu, S, noise_scale=1, beta=1)``.
- ``ST-Gumbel``: ``GumbelSampler(k, S, tau=0.5, hard=True)``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from diffhypergeom_studies.subsets.methods import Loss, Method, Objective
from diffhypergeom_studies.subsets.names import PEER_METHODS

__all__ = ["Peers", "load_peers", "peer_method", "working_directory"]

_MODULES = {"gumbel": "samplers.gumbel_scheme", "imle": "samplers.imle_scheme",
            "sfess": "samplers.sfess.sfess", "simple": "samplers.simple_scheme"}


@dataclass(frozen=True)
class Peers:
    """The peers' sampler modules, imported from ``path``."""

    path: Path
    modules: dict[str, ModuleType]


def load_peers(path: str | os.PathLike) -> Peers:
    """Import the samplers of the klaswijk/sfess copy at ``path`` (its root folder, which holds
    ``samplers/``). ``ValueError`` with what is wrong if they cannot be imported."""
    root = Path(path).expanduser().resolve()
    if not (root / "samplers").is_dir():
        raise ValueError(f"--peers {path}: no samplers/ folder there (give the root folder of "
                         "a copy of klaswijk/sfess)")
    for name in [n for n in sys.modules if n == "samplers" or n.startswith("samplers.")]:
        file = getattr(sys.modules[name], "__file__", None)
        if file is None or not Path(file).resolve().is_relative_to(root):
            del sys.modules[name]  # imported before from elsewhere: forget it
    sys.path.insert(0, str(root))
    try:
        modules = {key: importlib.import_module(name) for key, name in _MODULES.items()}
    except ImportError as err:
        raise ValueError(f"--peers {path}: importing the samplers failed: {err}") from err
    finally:
        sys.path.remove(str(root))
    for name, module in modules.items():
        if not Path(module.__file__).resolve().is_relative_to(root):
            raise ValueError(f"--peers {path}: {_MODULES[name]} was imported from "
                             f"{module.__file__}, not from that folder")
    return Peers(root, modules)


def peer_method(peers: Peers, name: str) -> Method:
    """One of ``names.PEER_METHODS``, built from the imported ``peers``.

    Its ``build(k, samples)`` makes one sampler; its loss reshapes the logits ``[B, N]`` to the
    peers' scores ``[B, N, 1]`` and their draws back to ``[S, B, N]``.
    """
    if name not in PEER_METHODS:
        raise ValueError(f"unknown peer {name!r}; known: {list(PEER_METHODS)}")
    m = peers.modules
    sfess = m["sfess"]
    cpu = torch.device("cpu")

    def build(k: int, samples: int) -> Loss:
        sampler = {
            "SIMPLE": lambda: m["simple"].SIMPLESampler(k, cpu, n_samples=samples),
            "SFESS": lambda: sfess.SFESSSampler(k, cpu, n_samples=samples),
            "SFESS-cv": lambda: sfess.SFESSSampler(k, cpu, n_samples=samples),
            "I-MLE": lambda: m["imle"].IMLESampler(k, cpu, samples, noise_scale=1.0, beta=1.0),
            "ST-Gumbel": lambda: m["gumbel"].GumbelSampler(k, samples, tau=0.5, hard=True),
        }[name]()
        scored = {"SFESS": "reinforce", "SFESS-cv": "control-variate"}.get(name)

        def loss(logits: torch.Tensor, f: Objective) -> torch.Tensor:
            rows, items = logits.shape
            z, log_p = sampler(logits.reshape(rows, items, 1))
            values = f(z.reshape(samples, rows, items).to(logits.dtype))
            if scored is None:
                return values.mean()
            return sfess.score_function_estimator(values, log_p, scored)
        return loss

    return Method(name, "peer", PEER_METHODS[name], build)


@contextlib.contextmanager
def working_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Run the block in ``path`` (created if missing): SIMPLE writes ``./simple_configs``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    before = Path.cwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(before)
