"""Temperature annealing for relaxed samplers (``docs/design/index.md`` section 2).

The paper's schedule: ``tau_t = tau_init * exp(-r t)`` with
``r = (log tau_init - log tau_final) / num_steps``, held at ``tau_final`` after ``num_steps``
(paper: ``tau_init = 10``, ``tau_final = 0.01``, 50,000 steps).
"""

from __future__ import annotations

import math

__all__ = ["exponential_temperature"]


def exponential_temperature(step: int, tau_init: float, tau_final: float,
                            num_steps: int) -> float:
    """Temperature at ``step`` of the exponential schedule from ``tau_init`` to ``tau_final``
    over ``num_steps`` steps (``tau_final`` from then on).

    Example:
        >>> from diffhypergeom_studies.annealing import exponential_temperature
        >>> [round(exponential_temperature(t, 1.0, 0.25, 100), 4) for t in (0, 50, 100, 200)]
        [1.0, 0.5, 0.25, 0.25]
    """
    if not (tau_init > 0 and tau_final > 0):
        raise ValueError(f"tau_init and tau_final must be > 0, got {tau_init}, {tau_final}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    num_steps = max(int(num_steps), 1)
    rate = (math.log(tau_init) - math.log(tau_final)) / num_steps
    return tau_init * math.exp(-rate * min(step, num_steps))
