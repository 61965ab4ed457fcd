"""Settings of one weak-supervision run, with the full-size and ``--quick`` presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from diffhypergeom_studies.weak.methods import (
    AGGREGATIONS,
    METHODS,
    OMEGA_INPUTS,
    SELECTOR_GRADIENTS,
)
from diffhypergeom_studies.weak.networks import KERNELS
from diffhypergeom_studies.weak.pairs import PAIRS

__all__ = ["DATASETS", "QUICK", "RunConfig"]

DATASETS = ("procedural", "mpi3d", "dsprites")


@dataclass(frozen=True)
class RunConfig:
    """One training run. ``latent_dim = 0`` means ``d = K`` (number of factors), so that a
    perfect method has ``s_hat = s``. ``anneal_steps = 0`` anneals over all ``steps``.
    ``pairs``: ``"fixed"`` pairs share exactly ``num_shared`` factors; ``"locatello"`` pairs
    follow disentanglement_lib's ``simple_dynamics`` with ``k`` (``-1``: random), and
    ``num_shared`` is not used (``diffhypergeom_studies.weak.pairs``)."""

    method: str = "hg"
    num_shared: int = 3
    pairs: str = "fixed"
    k: int = -1
    seed: int = 0
    dataset: str = "procedural"
    data_path: str | None = None
    image_size: int = 64
    latent_dim: int = 0
    width: float = 1.0
    hidden: int = 256
    kernels: str = "4x4"
    batch_size: int = 64
    steps: int = 20000
    lr: float = 1e-4
    aggregation: str = "mean"
    num_independent: int = 1
    tau_init: float = 10.0
    tau_final: float = 0.01
    anneal_steps: int = 0
    omega_input: str = "raw"
    hard_sort: bool = True
    selector_gradient: str = "gumbel"
    k_penalty: float = 0.0
    val_every: int = 500
    val_pairs: int = 512
    eval_pairs: int = 5000
    eval_train: int = 10000
    eval_test: int = 5000

    def __post_init__(self):
        checks = [
            (self.method in METHODS, f"method must be one of {METHODS}"),
            (self.dataset in DATASETS, f"dataset must be one of {DATASETS}"),
            (self.pairs in PAIRS, f"pairs must be one of {PAIRS}"),
            (self.kernels in KERNELS, f"kernels must be one of {KERNELS}"),
            (self.k == -1 or self.k >= 1, "k must be -1 (random) or >= 1"),
            (self.dataset == "procedural" or bool(self.data_path),
             f"dataset {self.dataset!r} needs data_path (the .npz file)"),
            (self.aggregation in AGGREGATIONS, f"aggregation must be one of {AGGREGATIONS}"),
            (self.omega_input in OMEGA_INPUTS, f"omega_input must be one of {OMEGA_INPUTS}"),
            (self.selector_gradient in SELECTOR_GRADIENTS,
             f"selector_gradient must be one of {SELECTOR_GRADIENTS}"),
            (self.k_penalty >= 0, "k_penalty must be >= 0"),
            (self.latent_dim >= 0, "latent_dim must be >= 0 (0 = number of factors)"),
            (self.batch_size >= 2 and self.steps >= 1, "batch_size >= 2 and steps >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0 < self.tau_final <= self.tau_init, "need 0 < tau_final <= tau_init"),
            (self.anneal_steps >= 0, "anneal_steps must be >= 0"),
            (self.val_every >= 1 and self.val_pairs >= 1, "val_every, val_pairs must be >= 1"),
            (min(self.eval_pairs, self.eval_train, self.eval_test) >= 2,
             "eval_pairs, eval_train, eval_test must be >= 2"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message} (got {self})")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown run settings: {sorted(unknown)}")
        return cls(**values)

    def with_(self, **changes) -> RunConfig:
        return replace(self, **changes)

    @property
    def setting(self) -> int:
        """The value the pairs are generated from: ``num_shared`` or (locatello) ``k``."""
        return self.k if self.pairs == "locatello" else self.num_shared


# small enough for a 2-core CPU: 32 x 32 images, half-width networks, a short step budget
QUICK = dict(image_size=32, width=0.5, hidden=128, batch_size=64, steps=600, lr=1e-3,
             val_every=100, val_pairs=256, eval_pairs=1000, eval_train=1500, eval_test=750)
