"""Task benchmarks of k-subset gradient estimators (issue 31, item 4): the library's estimators
against the peers shipped in klaswijk/sfess, each trained for the same wall-clock time on three
small tasks with data that scikit-learn ships (no download). One idea per module:

- ``names``: the task and method names (standard library only, for the command's ``--help``);
- ``data``: the digits and breast-cancer tables, split per seed;
- ``methods``: one loss function per gradient estimator, ``loss(logits [B, N], f) -> scalar``
  whose gradient is the estimate; the library's estimators and a control without a gradient;
- ``peers``: the same for SIMPLE, SFESS, SFESS-cv, I-MLE and straight-through Gumbel, imported
  from a local copy of klaswijk/sfess given by path;
- ``tasks``: the task interface and the three tasks (``l2x``, ``vae``, ``selection``);
- ``training``: training one model under a wall-clock (or step) budget with evaluations at
  fixed checkpoints, their time excluded;
- ``stats``: the paired comparison of the best library method with the best peer;
- ``study``: the whole run (resumable cells, ``results.json``, ``summary.md``) and its figures
  (``plotting``).

The command is ``diffhypergeom subsets`` (``diffhypergeom_studies.commands.subsets``).
"""

__all__: list[str] = []
