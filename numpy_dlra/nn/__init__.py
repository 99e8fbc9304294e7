"""The network's parts, each a stateless op ``forward(params, x, *, training, rng) -> (y, cache)``,
``backward(dy, cache, *, input_grad=True) -> (dx, grads)``:
- backend    the array module (NumPy, or CuPy for arrays on a GPU);
- layers     dense layer and ReLU (Eqs. 1-2), inverted dropout;
- conv       convolution, 2x2 max pooling, flatten (the fixed-rank baseline's CNN);
- lowrank    the fixed-rank layer B (C x) + b (Sainath et al. 2013);
- losses     softmax cross-entropy, the L2 term (Eq. 17);
- optim      Adam and annealed gradient noise (Sec. 5), in their textbook form;
- fast       the forms training runs: Adam's step and the noise in place, blocked for the CPU's cache,
             bitwise the textbook ones (not ops: functions over the parameter arrays);
- kernels    fused GPU kernels for those (one launch per array), used by fast on CuPy arrays;
- gradcheck  central-difference gradient checks (the tests' tool).
"""
