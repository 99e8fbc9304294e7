"""Per layer and axis, what the merges see: so that a stalled axis shows in the run's own files.

Every step of a DLRA run, each layer and axis has one closest pair (:class:`numpy_dlra.dlra.pairs.ClosestPairs`):
the pair RaRe pulls together and Eq. (13) tests. Its gap 1 - |cos| is what Eq. (13) compares with
tau_cos. An axis that stops merging shows a gap that stays above tau_cos; an axis whose pair is not the
one RaRe acts on (the stalled row reading, ``row_vectors = "wb"``) shows a gap that never closes.

:class:`AxisTrace` follows the gaps over an epoch and gives metrics.jsonl's ``axes`` list, one entry per
layer and axis with two vectors or more:

    layer, axis        the layer (1-based) and "cols" or "rows"
    gap_min, gap_end   the closest pair's 1 - |cos|: its smallest value over the epoch's steps, and at the
                       epoch's end (as searched: on W', or on [W', b'] rows with row_vectors = "wb")
    merges             merges on this layer and axis during the epoch
    fusable            whether the axis may fuse at the epoch's end (the Table 2 rules)
    w_norm, g, c       ||W'||_F, FN's gain g and scale c = k g / ||W'||_F (g = c = 1 without FN)
"""
import math

from ..nn.backend import to_numpy


class AxisTrace:
    """Collects the closest pairs' gaps after each step; :meth:`epoch_record` gives the epoch's list."""

    def __init__(self, pairs):
        self.pairs = pairs
        self.gap_min = {}

    def step(self):
        """After a train_step: note the current gap of every layer's tested pairs (O(layers))."""
        for (l, axis), gap in self._gaps().items():
            self.gap_min[(l, axis)] = min(gap, self.gap_min.get((l, axis), math.inf))

    def _gaps(self):
        p = self.pairs
        out = {}
        for l in range(1, p.model.n_layers + 1):
            for axis in ("cols", "rows"):
                pair = p.pairs.get((l, p.test_kind(axis)))
                if pair is not None:
                    out[(l, axis)] = 1.0 - abs(pair[2])
        return out

    def epoch_record(self, params, merges):
        """The epoch's ``axes`` list (see the module doc), then start the next epoch afresh."""
        p, model = self.pairs, self.pairs.model
        counts = {}
        for rec in merges:
            counts[(rec["layer"], rec["axis"])] = counts.get((rec["layer"], rec["axis"]), 0) + 1
        end = self._gaps()
        rows = []
        for layer in model.layers:
            l, W = layer.l, params[layer.keys["W"]]
            w_norm = float(to_numpy((W * W).sum())) ** 0.5
            g = float(to_numpy(params[layer.keys["g"]])[0]) if layer.k is not None else 1.0
            c = layer.c_fn(params)
            for axis in ("cols", "rows"):
                if (l, axis) not in end and (l, axis) not in counts:
                    continue
                rows.append({"layer": l, "axis": axis,
                             "gap_min": self.gap_min.get((l, axis), end.get((l, axis))),
                             "gap_end": end.get((l, axis)), "merges": counts.get((l, axis), 0),
                             "fusable": axis in p.fusable_axes(l), "w_norm": w_norm, "g": g, "c": c})
        self.gap_min = {}
        return rows
