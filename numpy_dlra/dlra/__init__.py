"""The method (paper Secs. 3-4, Algorithm 1): Dynamic Low-Rank Approximation.

Read in this order, each module one concept:
- equations   every equation as a small pure reference function (the tests' ground truth);
- layer       the factorized layer P FN(W') Q (Sec. 4.1, Eq. 15), P and Q stored sparsely;
- features    feature-space reduction for ReLU (Sec. 4.3);
- network     the paper's MLP held as P FN(W') Q, with the dropout decay (Eq. 14);
- pairs       the closest pairs, from one Gram per layer and axis per step (Eqs. 6-7);
- rare        the RaRe loss term and its gradient (Eq. 16);
- merge       Eq. (13)'s test and the fusing of Eqs. (8)-(12), corrected;
- algorithm1  one training step of Algorithm 1, which the trainer, benchmarks and tests call.
"""
