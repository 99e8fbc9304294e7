"""
Tutorial 11: DLRA on convolutions, the paper's future work (end of Sec. 4)
==========================================================================

The paper stops at dense layers: "for a kernel H x W x C_i x C_o, a column has the shape 1 x 1 x 1 x
C_o and a row has the shape H x W x C_i x 1", and leaves the convolution to future work. This
script adds one idea to tutorials 04-07: the affine frame of a kernel. Written as the C_o x
(kh kw C_i) matrix that im2col multiplies the patches by, a kernel is one more W of the paper,
held as ``P FN(W') Q``: a row is one output filter, a column either one (h, w, c_i) coordinate (the
paper's words, ``conv_columns="coord"``) or all kh kw positions of one input channel (the
``"channel"`` reading, the default: the layer stays a convolution, with fewer input channels after
``Q`` mixes them). Everything else (RaRe, Eq. 13, the fusions, FN) is the MLP's, applied to W'.

1. The kernel as a matrix: what a row and a column are, their shapes under both readings, and
   what each reading makes of the seed CNN's layers (conv 32 3x3, conv 32 3x3, max pool, dense 256,
   dense 10): the shape of W', the axes that may fuse, the largest Gram of the pair search.
2. Two fusions by hand in a small ``FactorizedCNN`` (``from_cnn``): two exactly parallel filters
   of the first convolution (``w_d = r w_k``, biases too), then two parallel input channels of the
   second, each through the layer's own ``fuse`` and ``rebuild``: the logits do not move, the
   matrices shrink. ReLU and max pooling commute with a positive scale, so a fused output channel
   is exact through the pool too.
3. A short DLRA run of a narrow CNN on the embedded data (``TrainConfig(model="cnn", ...)`` and
   ``train``) and its export (``export_run``, what ``numpy-dlra export RUN --out FILE.npz`` does):
   a plain CNN with fewer channels whose logits are the run's.

Settings of the run that differ from the paper's (which never ran a CNN), so that merges happen in
two epochs: widths 8, 8, 32 (the seed CNN's are 32, 32, 256); 1,500 of the embedded subset's 4,500
training images, batch 32, lr 1e-2; lambda1 200, tau_cos 0.02, tau_euc 10 (paper: 20, 1e-4, 0.1),
so the merges are lossy; no gradient noise; float64, so that the merges do not depend on the number
of BLAS threads. Run ``python tutorials/11_convolutions.py`` from any folder, or cell by cell in
Jupyter or VS Code; the run goes to a temporary folder, removed at the end, and the figure appears
inline.

Expected output (2 cores, about 8 s)::

    a kernel K (3, 3, 4, 6) is the matrix W (6, 36): row o = filter K[:, :, :, o] (36 numbers), column j = K[h, w, c, :] (6 numbers)
    column 21 is the coordinate (h, w, c) = (1, 2, 1): W[:, 21] = K[1, 2, 1, :]: True
    channel reading: column c = K[:, :, c, :], 54 numbers; W reshaped (54, 4), column 1 = K[:, :, 1, :]: True
    the seed CNN 32, 32, 256 under each reading: W' (m' x columns), the axes that may fuse, the largest Gram
      channel, longer: 32x1 rows | 32x32 cols+rows | 256x32 rows | 10x256 cols; largest Gram 256 x 256
      channel, both:   32x1 rows | 32x32 cols+rows | 256x32 cols+rows | 10x256 cols; largest Gram 256 x 256
      coord, longer:   32x9 rows | 32x288 cols | 256x4608 cols | 10x256 cols; largest Gram 4608 x 4608
      coord, both:     32x9 rows | 32x288 cols+rows | 256x4608 cols+rows | 10x256 cols; largest Gram 4608 x 4608
    a FactorizedCNN 28x28x1 - 8 - 8 - 32 - 10 (from_cnn), 16 test images: logits = the dense CNN's to 1e-12: True
    conv1 filter 5 = 1.5 x filter 2, biases too: fuse rows (r 1.5000), W'1 8 x 9 -> 7 x 9, P1 8 x 8 -> 8 x 7
      max |logits after - before| < 1e-12: True; output channels 8 -> 7
    max-pool(relu(p u)) = p max-pool(relu(u)) for p > 0: True
    conv2 channel 4 = -2 x channel 1 (all 9 positions): fuse cols (r -2.0000), W'2 8 x 72 -> 8 x 63, Q2 8 x 8 -> 7 x 8
      max |logits after - before| < 1e-12: True; input channels of the convolution 8 -> 7
    the exported plain CNN: K1 (3, 3, 1, 7), K2 (3, 3, 7, 8), W3 (32, 1152), W4 (10, 32); logits = the factorized net's to 1e-12: True
    DLRA on a CNN 8, 8, 32, channel columns, longer axes, 2 epochs on 1,500 images: W' of layers 1-4, features of layers 1-3
      epoch 1: test 60.30 %, W' 7x1 6x6 29x8 10x25, features 8 8 29, 34,101 params, 15 merges
      epoch 2: test 72.70 %, W' 6x1 5x4 26x8 10x18, features 8 7 28, 30,417 params, 14 merges
    merges.jsonl: 29 merges (layer 1 rows: 2, layer 2 cols: 4, layer 2 rows: 3, layer 3 rows: 6, layer 4 cols: 14)
    exported: a plain CNN of widths 8, 7, 28 (the run's features: True); K2 (3, 3, 8, 7), W3 (28, 1008)
    parameters: dense 37,890, exported 29,133, factorized W' 30,417
    the exported CNN's logits on the 1000 test images = the run's to 1e-9: True; test accuracy 72.70 %
"""
import os

# One BLAS thread unless you say otherwise: at these sizes a second thread gains little, and on a busy machine
# the threads wait for each other (set before NumPy loads OpenBLAS).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import dataclasses  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from numpy_dlra.data.datasets import load_dataset  # noqa: E402
from numpy_dlra.dlra.conv_network import FactorizedCNN  # noqa: E402
from numpy_dlra.dlra.pairs import FusionRules  # noqa: E402
from numpy_dlra.experiments.build import build_model  # noqa: E402
from numpy_dlra.experiments.config import TrainConfig  # noqa: E402
from numpy_dlra.experiments.export import export_run  # noqa: E402
from numpy_dlra.experiments.run_folder import RunFolder  # noqa: E402
from numpy_dlra.experiments.train import train  # noqa: E402
from numpy_dlra.models.cnn import CNN  # noqa: E402
from numpy_dlra.nn.conv import MaxPool2D  # noqa: E402
from numpy_dlra.nn.optim import Adam  # noqa: E402

rng = np.random.default_rng(11)

# %%
# 1. The kernel as a matrix
# -------------------------
#
# A kernel ``K`` of shape (kh, kw, C_i, C_o) = (3, 3, 4, 6) computes, at each output position, the
# product of the C_o x (kh kw C_i) matrix ``W`` with the patch under it, read in (h, w, c) order
# (im2col). A row of W is one output filter, ``kh x kw x C_i x 1`` in the paper's words; a column
# is one input coordinate (h, w, c) across the C_o filters, ``1 x 1 x 1 x C_o``.

K = rng.standard_normal((3, 3, 4, 6))
W = K.reshape(-1, K.shape[3]).T  # (C_o, kh kw C_i): W[o, (h, w, c)] = K[h, w, c, o]
print(f"a kernel K {K.shape} is the matrix W {W.shape}: row o = filter K[:, :, :, o] ({W.shape[1]} numbers), "
      f"column j = K[h, w, c, :] ({W.shape[0]} numbers)")
j = 21
h, w, c = np.unravel_index(j, K.shape[:3])
print(f"column {j} is the coordinate (h, w, c) = ({h}, {w}, {c}): W[:, {j}] = K[{h}, {w}, {c}, :]: "
      f"{np.array_equal(W[:, j], K[h, w, c])}")

# %%
# The "channel" reading takes all kh kw positions of one input channel as one column: the 9
# columns (h, w, c) of a channel c, stacked, C_o kh kw numbers. Because W is stored in (h, w, c)
# order, they are the columns of W reshaped to (C_o kh kw, C_i) (``ConvLayer.view``), a view. Fusing
# two such columns leaves a convolution that reads one channel fewer (``Q`` mixes the two into one);
# fusing two coordinate columns leaves a matrix that no longer has a convolution's structure.

V = W.reshape(-1, K.shape[2])  # (C_o kh kw, C_i): column c = every weight that reads input channel c
c = 1
print(f"channel reading: column c = K[:, :, c, :], {V.shape[0]} numbers; W reshaped {V.shape}, column {c} = "
      f"K[:, :, {c}, :]: {np.array_equal(V[:, c], K[:, :, c, :].transpose(2, 0, 1).reshape(-1))}")

# %%
# What each reading makes of the seed CNN. Layers 1-3 are read as kernels; layer 3, the dense layer
# after the pool, as a 12 x 12 "convolution" covering the pooled image (its columns are
# the 12 x 12 x 32 = 4608 inputs, or the 32 channels). Which axes may fuse: "longer" is the MLP's
# rule (Table 2) on (m', number of columns), "both" allows rows and columns. The pair search builds
# one Gram per layer and axis every step (RaRe acts on both axes): columns x columns and rows x rows.

readings = [("channel", "longer"), ("channel", "both"), ("coord", "longer"), ("coord", "both")]
seed_cnn = CNN((28, 28, 1), 10)  # widths 32, 32, 256
seed_params = seed_cnn.init_params(np.random.default_rng(0), np.float32)
print("the seed CNN 32, 32, 256 under each reading: W' (m' x columns), the axes that may fuse, the largest Gram")
for columns, axes in readings:
    net, _ = FactorizedCNN.from_cnn(seed_cnn, seed_params, columns=columns, axes=axes)
    cells = [f"{m}x{n} {'+'.join(layer.fusable_axes())}" for layer in net.layers for m, n in [layer.shape()]]
    gram = max(max(layer.shape()) for layer in net.layers)
    print(f"  {columns + ', ' + axes + ':':<16} {' | '.join(cells)}; largest Gram {gram} x {gram}")

# %%
# The matrix of a kernel, drawn: the second convolution of a random seed CNN, 32 x 288. The
# 9 columns of input channel 0 (one column of the "channel" reading) are framed: they lie
# every 32 columns, one per position (h, w).

W2 = seed_params["K2"].reshape(-1, 32).T  # (32, 288)
fig, ax = plt.subplots(figsize=(10, 2.6))
lim = np.abs(W2).max()
ax.imshow(W2, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
for p in range(9):
    ax.add_patch(plt.Rectangle((p * 32 - 0.5, -0.5), 1, 32, fill=False, color="k", lw=1.2))
ax.set(xlabel="column j = (h, w, c), c running fastest", ylabel="output filter",
       title="K2 as the matrix W (32 x 288); framed: the 9 columns of input channel 0")
fig.tight_layout()

# %%
# 2. Two fusions by hand
# ----------------------
#
# A small CNN (8 and 8 channels, dense 32, on 28 x 28 images) and its factorized form, ``P = Q =
# I``, ``W'`` = each kernel as its matrix, FN on: the same function as the dense CNN.

data = load_dataset("embedded", log=lambda msg: None)
x = np.asarray(data.x_test[:16], dtype=np.float64)  # (16, 784)
cnn = CNN((28, 28, 1), 10, widths=(8, 8, 32))
dense = cnn.init_params(np.random.default_rng(0), np.float64)
model, params = FactorizedCNN.from_cnn(cnn, dense)
state = Adam(1e-3).init(params)  # fuse() updates Adam's moments with the parameters
before = model.forward(params, x)[0]
print(f"a FactorizedCNN 28x28x1 - 8 - 8 - 32 - 10 (from_cnn), 16 test images: logits = the dense CNN's to 1e-12: "
      f"{np.abs(before - cnn.forward(dense, x)[0]).max() < 1e-12}")

# %%
# Rows: make output filter 5 of the first convolution 1.5 times filter 2, its bias too, and fuse
# the two rows (Eqs. 7-12 on rows: W' loses row d, row k is scaled by s = sqrt(r^2 + 1), P's
# column k becomes ``(r p_d + p_k) / s``). Output channels 2 and 5 are now positive multiples of one
# feature (Sec. 4.3), so the network carries 7 channels, and the second convolution reads channel 5
# as 1.5 times channel 2: the logits do not move.

conv1, conv2 = model.layers[0], model.layers[1]
k, d, r = 2, 5, 1.5
params["W1"][d], params["b1"][d] = r * params["W1"][k], r * params["b1"][k]
before = model.forward(params, x)[0]
shape_w, shape_p = params["W1"].shape, conv1.factors.dense_P(conv1.shape()[0]).shape
r_fused, _ = conv1.fuse(params, state, "rows", k, d, FusionRules())
model.rebuild()  # the ops from the new P and Q
change = np.abs(model.forward(params, x)[0] - before).max()
P1 = conv1.factors.dense_P(conv1.shape()[0])
print(f"conv1 filter {d} = {r} x filter {k}, biases too: fuse rows (r {r_fused:.4f}), W'1 {shape_w[0]} x {shape_w[1]} "
      f"-> {params['W1'].shape[0]} x {params['W1'].shape[1]}, P1 {shape_p[0]} x {shape_p[1]} -> "
      f"{P1.shape[0]} x {P1.shape[1]}")
print(f"  max |logits after - before| < 1e-12: {change < 1e-12}; output channels 8 -> {conv1.groups.size}")

# %%
# Why this holds through ReLU and the pool: both commute with a positive scale,
# ``max-pool(relu(p u)) = p max-pool(relu(u))``, channel by channel. (A negative r would flip the
# feature, ``relu(-u) != -relu(u)``: the row still fuses, but the feature groups of Sec. 4.3 keep
# both signs as two channels, as the run below shows in its first layer.)

u = rng.standard_normal((2, 6, 6, 3))
p = rng.uniform(0.1, 3.0, 3)
pool = lambda a: MaxPool2D().forward({}, a)[0]  # noqa: E731
print(f"max-pool(relu(p u)) = p max-pool(relu(u)) for p > 0: "
      f"{np.allclose(pool(np.maximum(p * u, 0)), p * pool(np.maximum(u, 0)), rtol=1e-15, atol=0)}")

# %%
# Columns: under the "channel" reading, a column of the second convolution is one input channel,
# all 9 positions (``conv2.view(W', "cols")``, 72 x 8). Make channel 4 -2 times channel 1 and fuse:
# W' loses the 9 weights of channel 4 per filter, Q's row 1 becomes ``(r q_4 + q_1) / s``; the
# convolution now reads 7 mixed channels instead of 8.

Vc = conv2.view(params["W2"], "cols")  # (m' kh kw, n') = (72, 8), a view of W'2 (8, 72)
k, d, r = 1, 4, -2.0
Vc[:, d] = r * Vc[:, k]
before = model.forward(params, x)[0]
shape_w, shape_q = params["W2"].shape, conv2.factors.dense_Q(conv2.shape()[1]).shape
r_fused, _ = conv2.fuse(params, state, "cols", k, d, FusionRules())
model.rebuild()
change = np.abs(model.forward(params, x)[0] - before).max()
Q2 = conv2.factors.dense_Q(conv2.shape()[1])
print(f"conv2 channel {d} = {r:g} x channel {k} (all 9 positions): fuse cols (r {r_fused:.4f}), W'2 {shape_w[0]} x "
      f"{shape_w[1]} -> {params['W2'].shape[0]} x {params['W2'].shape[1]}, Q2 {shape_q[0]} x {shape_q[1]} -> "
      f"{Q2.shape[0]} x {Q2.shape[1]}")
print(f"  max |logits after - before| < 1e-12: {change < 1e-12}; input channels of the convolution 8 -> "
      f"{conv2.shape()[1]}")

# %%
# The plain CNN this network computes (``export``): P, Q, FN's scale and the feature groups
# multiplied out. The first convolution has 7 output channels. The second still reads all 7: Q
# mixes two ReLU channels into one input, and a sum of two ReLU channels is no channel of the
# plain network, so the exported kernel takes every channel (as the exported MLP of tutorial 09
# keeps its inputs). Only fused rows, fewer features, make a plain CNN narrower.

out = model.export(params)
plain = model.exported_model()
logits = model.forward(params, x)[0]
shapes = ", ".join(f"{n} {out[n].shape}" for n in ("K1", "K2", "W3", "W4"))
print(f"the exported plain CNN: {shapes}; logits = the factorized net's to 1e-12: "
      f"{np.abs(plain.forward(out, x)[0] - logits).max() < 1e-12}")

# %%
# 3. A short DLRA run, and its export
# -----------------------------------
#
# ``TrainConfig(model="cnn", method="dlra")`` trains the factorized CNN with Algorithm 1 unchanged;
# ``conv_columns`` and ``conv_axes`` pick the readings (``--conv-columns``, ``--conv-axes`` of
# ``numpy-dlra train``). The run uses 1,500 training images (``train(..., dataset=...)``) and the
# settings of the header. ``metrics.jsonl`` records each layer's W' (m' x columns) and its feature
# count: the channels of the plain CNN.

RUN = Path(tempfile.mkdtemp(prefix="tutorial11_")) / "cnn-dlra"
subset = dataclasses.replace(data, x_train=data.x_train[:1500], y_train=data.y_train[:1500])
cfg = TrainConfig(model="cnn", method="dlra", data="embedded", cnn_widths=(8, 8, 32), epochs=2, batch_size=32,
                  lr=1e-2, lambda1=200.0, tau_cos=0.02, tau_euc=10.0, grad_noise_eta=0.0, probe_size=64,
                  dtype="float64", conv_columns="channel", conv_axes="longer")
train(cfg, RUN, progress=False, log=lambda msg: None, dataset=subset)
metrics = [json.loads(line) for line in (RUN / "metrics.jsonl").read_text().splitlines()]
merges = [json.loads(line) for line in (RUN / "merges.jsonl").read_text().splitlines()]
print(f"DLRA on a CNN {', '.join(map(str, cfg.cnn_widths))}, {cfg.conv_columns} columns, {cfg.conv_axes} axes, "
      f"{cfg.epochs} epochs on {len(subset.y_train):,} images: W' of layers 1-4, features of layers 1-3")
for rec in metrics:
    shapes = " ".join(f"{d['m']}x{d['n']}" for d in rec["layers"])
    feats = " ".join(str(d["feat"]) for d in rec["layers"][:-1])
    print(f"  epoch {rec['epoch']}: test {rec['test_acc']:.2f} %, W' {shapes}, features {feats}, "
          f"{rec['params']:,} params, {rec['merges']} merges")
by_axis = Counter((m["layer"], m["axis"]) for m in merges)
print(f"merges.jsonl: {len(merges)} merges ("
      + ", ".join(f"layer {l} {axis}: {n}" for (l, axis), n in sorted(by_axis.items())) + ")")

# %%
# The export: ``export_run`` writes the plain CNN of the run's last checkpoint to an ``.npz``, as
# ``numpy-dlra export RUN --out FILE.npz`` does: K1, K2, W3, W4 and the biases, of the widths the
# run's features give. The plain CNN (``numpy_dlra.models.cnn.CNN`` of those widths) gives the
# logits of the factorized network the checkpoint holds. Of the three parameter counts (the dense
# CNN, the exported one, the factorized W'), the exported one can be the smallest: layer 3's W'
# keeps its 8 channel columns (its rows are its longer axis, so only they fuse), but it reads the
# fewer features that layer 2 has left, and the export folds that connector into W3.

meta = export_run(RUN, RUN.parent / "exported.npz", dtype="float64", log=lambda msg: None)
z = dict(np.load(RUN.parent / "exported.npz"))
widths = (z["K1"].shape[3], z["K2"].shape[3], z["W3"].shape[0])
feats = tuple(d["feat"] for d in metrics[-1]["layers"][:-1])
print(f"exported: a plain CNN of widths {', '.join(map(str, widths))} (the run's features: {widths == feats}); "
      f"K2 {z['K2'].shape}, W3 {z['W3'].shape}")
c = meta["params"]
print(f"parameters: dense {c['dense']:,}, exported {c['exported']:,}, factorized W' {c['factorized']:,}")
saved = RunFolder(RUN).load()  # the last checkpoint
net, net_params = build_model(saved.config, state=saved)  # the run's factorized CNN, from its checkpoint
x_test = np.asarray(data.x_test, dtype=np.float64)
run_logits = net.forward(net_params, x_test)[0]
plain_logits = CNN((28, 28, 1), 10, widths=widths).forward({k: v for k, v in z.items() if k[0] in "KWb"}, x_test)[0]
acc = 100 * (plain_logits.argmax(1) == data.y_test).mean()
print(f"the exported CNN's logits on the {len(x_test)} test images = the run's to 1e-9: "
      f"{np.abs(plain_logits - run_logits).max() < 1e-9}; test accuracy {acc:.2f} %")
shutil.rmtree(RUN.parent)  # the temporary folder of the run
