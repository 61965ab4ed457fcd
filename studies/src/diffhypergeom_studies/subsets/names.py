"""The names of the k-subset task benchmark's tasks and methods. Standard library only: the
command's ``--help`` lists them without importing torch."""

from __future__ import annotations

__all__ = ["CONTROL_METHODS", "LIBRARY_METHODS", "METHODS", "PEER_METHODS", "TASKS"]

# task name -> one line (the task modules hold the details)
TASKS: dict[str, str] = {
    "l2x": "instance-wise selection of k = 8 of the 64 pixels of a digit to predict its class "
           "(L2X); test accuracy",
    "vae": "k-subset VAE on the digits: k = 4 of 32 latent items; test reconstruction loss",
    "selection": "global selection of k = 5 of the 30 breast-cancer features for a logistic "
                 "head; test cross-entropy",
}
# method name -> what it is
LIBRARY_METHODS: dict[str, str] = {
    "reinforce-loo": "surrogate_loss(k_subset(logits, k), f, S, 'reinforce-loo')",
    "reinforce-linear": "surrogate_loss(k_subset(logits, k), f, S, 'reinforce-linear')",
    "pathwise": "surrogate_loss(k_subset(logits, k), f, S, 'pathwise') (the exact mean's "
                "gradient)",
    "gumbel-loo": "surrogate_loss(gumbel_top_k(logits, k), f, S, 'reinforce-loo') (the "
                  "Wallenius law of Gumbel-top-k)",
}
PEER_METHODS: dict[str, str] = {
    "SIMPLE": "SIMPLE (Ahmed et al. 2023), klaswijk/sfess's SIMPLESampler",
    "SFESS": "SFESS (Wijk et al. 2025) with its 'reinforce' estimator",
    "SFESS-cv": "SFESS with its 'control-variate' estimator",
    "I-MLE": "I-MLE (Niepert et al. 2021), noise scale 1, beta 1",
    "ST-Gumbel": "straight-through Gumbel top-k (Xie and Ermon 2019), temperature 0.5",
}
# not run unless named: the floor a method must beat
CONTROL_METHODS: dict[str, str] = {
    "no-gradient": "exact k_subset draws with no gradient to the logits (f's own parameters "
                   "still learn): the floor",
}
METHODS: dict[str, str] = {**LIBRARY_METHODS, **PEER_METHODS, **CONTROL_METHODS}
