"""numpy_dlra: Dynamic Low-Rank Approximation (Lee et al., Applied Sciences 2021) in NumPy.

Start with README.md (its table goes from each equation to its code and its test). The
subpackages follow the paper, and each imports only from those above it:
- nn           the network's parts (Eqs. 1-2, dropout, the L2 term Eq. 17, Adam, gradient noise);
- models       the paper's MLP (Sec. 5) and the fixed-rank baseline's CNN;
- data         Fashion-MNIST (and MNIST, CIFAR-100), the embedded subset;
- dlra         the method: the equations (Secs. 3-4), P FN(W') Q, RaRe, the merges, Algorithm 1;
- experiments  the configuration, the training loop, run folders, the rank sweep and comparison.
"""
__version__ = "0.1.0"
