"""The method (paper Secs. 3-4, Algorithm 1): Dynamic Low-Rank Approximation.

Read in this order, each module one concept:
- reference   Algorithm 1 from the equations alone, read this first;
- equations   every equation as a small pure reference function (the tests' ground truth);
- layer       the factorized layer P FN(W') Q behind one interface (the reference's DenseLayer has the same):
              P and Q stored sparsely, the fusion of Eqs. (7)-(12), the dense and exported forms;
- ops         the layer's ops: the connector (Q), FN linear (Eq. 15), the gather (P);
- features    feature-space reduction for ReLU;
- network     the paper's MLP as a list of layers, with the dropout decay and the export;
- pairs       the closest pairs, from one Gram per layer and axis per step;
- rare        the RaRe loss term and its gradient;
- merge       Eq. (13)'s test and the fusing, corrected;
- algorithm1  one training step of Algorithm 1, which the trainer, benchmarks and tests call.

Which equation each function computes, what training runs in its place, and the tests that hold the
two together: :mod:`numpy_dlra.paper_map`.
"""
