"""Weak supervision with the differentiable hypergeometric distribution (the paper's Section 5.2).

Pairs of images share ``s`` of their ``K`` generative factors; a VAE with one encoder and one
decoder aggregates the latent dimensions it believes shared across the two views. The methods
differ only in how the shared set is chosen: ``label`` (LabelVAE, number of independent factors
given), ``ada`` (AdaVAE, KL threshold) and ``hg`` (HGVAE, number of independent dims drawn from
a relaxed MFNCH, top-k by NeuralSort).

Modules: ``sources`` (factor -> image interface), ``render`` (procedural mpi3d-like images),
``loaders`` (mpi3d / dSprites ``.npz``), ``pairs`` (lazy seeded pairs), ``networks`` (conv
encoder/decoder), ``methods`` (shared-set selection and aggregation), ``module`` (Lightning),
``metrics``, ``train`` (one run), ``sweep`` (methods x s x seeds), ``report`` (tables/figures).
Importing this package needs torch and numpy only; ``module`` (Lightning) and ``metrics``
(scikit-learn) import them when imported, ``train`` and ``sweep`` only when they run.
"""

__all__: list[str] = []
