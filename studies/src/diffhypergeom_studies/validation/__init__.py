"""Validation studies of the library (issue 3): one module per study.

- ``ks``: the paper's Kolmogorov-Smirnov study (Figures 1, 9, 10) against an independent exact
  reference (``reference``) and the paper's merged reference;
- ``urn``: learning the urn weights from samples (relaxed gradient descent vs maximum
  likelihood);
- ``gradients``: bias, spread and time of every gradient estimator (``rsample``'s gradients and
  ``diffhypergeom.estimators``) against the exact gradient of a small, enumerable urn;
- ``bench``: sampling throughput and peak memory against size.

Each study exposes a config dataclass (``quick()`` / ``paper()``) and a ``run_*`` function that
writes ``results.json``, ``summary.md`` and PNG figures into a run directory. The study modules
import numpy/scipy/matplotlib; the core package stays torch + numpy only.
"""

__all__: list[str] = []
