"""Deep variational clustering (VaDE) with a learnable cluster-size prior.

The paper's second application (Sutter et al., ICLR 2023, Section 5.3 and Appendix C.3): a VaDE
(Jiang et al. 2016) whose prior over the cluster assignments of a batch is either a categorical
with learnable weights, uniform, or the multivariate Fisher noncentral hypergeometric
distribution (MFNCH) over the batch's cluster sizes with learnable weights.

Modules: ``idx`` (IDX file reader/writer), ``datasets`` (digits, Fashion-MNIST, IDX
directories, imbalanced subsampling), ``networks`` (MLP encoder/decoder), ``priors`` (the three
cluster priors), ``module`` (the Lightning VaDE), ``pretrain`` (autoencoder + GMM
initialisation, cached), ``metrics`` (matched accuracy, NMI, ARI, weights vs proportions) and
``sweep`` (priors x dataset versions x seeds). This subpackage needs the ``experiments`` extra
(scikit-learn, scipy, lightning, matplotlib); the core ``diffhypergeom`` does not import it.
"""

__all__: list[str] = []
