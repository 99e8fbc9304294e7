"""The one map from the paper to the code: equation -> reference function -> engine function -> tests.

Each :class:`Entry` is one equation or paper item of Lee et al. (2021), or of the fixed-rank baseline
after Sainath et al. (2013). It names the small pure *reference* function (the definition the tests take
as ground truth), the *engine* function that training runs (faster: shared Grams, sparse P and Q, in-place
updates), the tests that hold the two together, and, in ``notes``, where the code departs from the
printed paper: the Eq. (11) erratum, the readings the paper leaves open (each with its flag and where its
default's measurement is, mostly docs/choices.md), and the FLOP counts.

This is the only hand-kept copy. The README's "From the paper to the code", docs/method.md's last
section, the documentation site's section pages and the package docstring of :mod:`numpy_dlra.dlra`
read it or are generated from it: ``python -c "from numpy_dlra.paper_map import markdown_table;
print(markdown_table())"``. tests/test_paper_map.py checks that every path resolves and every test exists.

The pytest markers come from it too (tests/conftest.py registers and applies them): every test an entry
names carries the markers of its section (``sec4_1``; ``rare``, ``fn``, ``alg1``, ...: SECTION_MARKERS) and
of its label (``eq11`` for each equation number, ``table1``, ``erratum``, ...), so ``pytest -m eq13`` runs
exactly the tests the map names for Eq. (13). TUTORIALS names the tutorial that runs each section.
"""
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

# The paper's sections in reading order: (key, title). Keys are the section numbers the code cites, or a
# name where it cites none (Eq. 13, the losses, Algorithm 1, the baseline).
SECTIONS = [
    ("3", "Redundancy in the rank"),
    ("4", "RaRe, the rank-reducing loss"),
    ("4.1", "The factorized layer P FN(W') Q and fusing two vectors"),
    ("Eq. 13", "When to fuse"),
    ("4.3", "Feature-space reduction for ReLU, and the dropout decay"),
    ("4.5", "Frobenius Normalization"),
    ("Eqs. 16-18", "The losses"),
    ("Algorithm 1", "One training step"),
    ("Other architectures", "DLRA on convolutions, the paper's future work (end of Sec. 4)"),
    ("5", "Experiments: the network, its training and Tables 1-2"),
    ("Sainath et al. 2013", "The fixed-rank baseline: low-rank factors of a layer"),
]

# The pytest markers of each section's tests: its number, and a name where it has one (``pytest -m fn``).
# A section missing here gets its number (sec6_2) or, for a named one, its name in lower case.
SECTION_MARKERS = {
    "3": ("sec3",),
    "4": ("sec4", "rare"),
    "4.1": ("sec4_1", "fusion"),
    "Eq. 13": ("eq13",),
    "4.3": ("sec4_3",),
    "4.5": ("sec4_5", "fn"),
    "Eqs. 16-18": ("losses",),
    "Algorithm 1": ("alg1",),
    "Other architectures": ("conv",),
    "5": ("sec5",),
    "Sainath et al. 2013": ("sainath",),
}

# The tutorials (tutorials/<name>.py) that run each section; the site links the two both ways.
TUTORIALS = {
    "3": ("02_rank_redundancy",),
    "4": ("03_rare_loss",),
    "4.1": ("04_fusing_vectors",),
    "Eq. 13": ("05_when_to_fuse",),
    "4.3": ("06_feature_reduction_and_fn",),
    "4.5": ("06_feature_reduction_and_fn", "10_l2_under_fn"),
    "Eqs. 16-18": ("10_l2_under_fn",),
    "Algorithm 1": ("07_complete_dlra_run", "09_your_own_network"),
    "Other architectures": ("11_convolutions",),
    "5": ("01_baseline_mlp", "07_complete_dlra_run", "09_your_own_network"),
    "Sainath et al. 2013": ("08_fixed_rank",),
}


@dataclass(frozen=True)
class Entry:
    """One row of the map. Paths are dotted (module attribute, or Class.method); tests are pytest node ids.
    An empty ``engine`` means nothing in training runs it; ``engine == reference``, that training runs it."""

    section: str  # a key of SECTIONS
    label: str  # unique: "Eq. (6)", "Sec. 4.3", "Table 1", ...
    title: str
    latex: str  # the equation as the paper prints it, or corrected (then ``notes`` says so); "" if none
    reference: tuple = ()
    engine: tuple = ()
    tests: tuple = ()
    notes: str = ""


ENTRIES = [
    Entry("3", "Eqs. (1)-(2)", "dense layer and ReLU",
          r"y = f(W x + b), \quad f(z) = \max(0, z), \quad W \in \mathbb{R}^{m \times n}",
          ("numpy_dlra.nn.layers.Linear", "numpy_dlra.nn.layers.ReLU"),
          ("numpy_dlra.nn.layers.Linear", "numpy_dlra.nn.layers.ReLU"),
          ("tests/test_layers.py::test_linear_grads", "tests/test_layers.py::test_relu_grad"),
          "W is stored (outputs, inputs), as in the paper; columns are input coordinates, rows outputs."),
    Entry("3", "Eqs. (3)-(4)", "strict and soft linear dependence, MLIS (tutorials/02_rank_redundancy.py)",
          r"\hat W a^\top = 0,\ a \neq 0 \quad (3); \qquad \hat W a^\top + \xi^\top = 0,\ a \neq 0,\ \|\xi\|_2 < \tau"
          r" \quad (4); \qquad \hat W = [W, b]",
          (), (), ("tests/test_tutorials.py::test_tutorial_prints_its_expected_output[02_rank_redundancy.py]",),
          "No package function: tutorials/02_rank_redundancy.py measures MLIS_strict, MLIS_soft and the count of "
          "dependent vectors along the longer axis, |(n + 1) - m| (not |n - m| + 1; docs/method.md Sec. 2). With "
          "||a|| = 1 the smallest ||xi|| is sigma_min(W_hat), so a soft dependency at tau is sigma_min < tau."),

    Entry("4", "Eq. (5)", "RaRe and its gradient",
          r"\mathrm{RaRe}(W) = \min_i \min_{j \neq i} \bigl(1 - D_{\cos}(i, j, W)^2\bigr)",
          ("numpy_dlra.dlra.equations.rare", "numpy_dlra.dlra.equations.rare_grad"),
          ("numpy_dlra.dlra.rare.rare_term",),
          ("tests/test_equations.py::test_rare_grad_matches_central_differences",
           "tests/test_equations.py::test_rare_of_parallel_columns_is_zero"),
          "Only the closest pair gets a gradient (a subgradient at ties); it is orthogonal to both vectors. The "
          "engine takes the pair from the Grams of pairs.ClosestPairs (Eq. 6), found once per step."),
    Entry("4", "Eq. (6)", "cosine matrix, closest pair",
          r"D_{\cos}(i, j, W) = \frac{\langle w_i, w_j \rangle}{\|w_i\|\,\|w_j\|}",
          ("numpy_dlra.dlra.equations.cos_matrix",),
          ("numpy_dlra.dlra.pairs.closest_pair", "numpy_dlra.dlra.pairs.ClosestPairs.refresh"),
          ("tests/test_fusion.py::test_closest_pair_from_the_gram_is_the_equations_pair",
           "tests/test_equations.py::test_cos_matrix_and_rare_definitions",
           "tests/test_fusion.py::test_search_every_k_searches_on_multiples_of_k_and_remeasures_in_between"),
          "The engine reads the cosines from one Gram per layer and axis per step (W'^T W', W' W'^T), shared by "
          "the merge test and the next step's RaRe term. --search-every K > 1 searches only every K-th step and "
          "re-measures the known pairs in between: an approximation, off by default (docs/choices.md)."),

    Entry("4.1", "Sec. 4.1", "the factorized layer P FN(W') Q",
          r"y = f\bigl(P\,(\mathrm{FN}(W')\,Q\,x + b')\bigr), \quad W = P\,\mathrm{FN}(W')\,Q, \quad b = P\,b'",
          ("numpy_dlra.dlra.network.FactorizedMLP.to_dense", "numpy_dlra.dlra.reference.forward"),
          ("numpy_dlra.dlra.layer.FactorizedLayer", "numpy_dlra.dlra.layer.LayerFactors", "numpy_dlra.dlra.ops.Connect",
           "numpy_dlra.dlra.ops.FNLinear", "numpy_dlra.dlra.ops.Gather", "numpy_dlra.dlra.network.FactorizedMLP.forward"),
          ("tests/test_factorized.py::test_factorized_net_equals_its_dense_form_for_any_signs",
           "tests/test_factorized.py::test_identity_factorization_without_fn_is_the_dense_mlp_bit_for_bit",
           "tests/test_factorized.py::test_every_parameter_elementwise_tiny_random_structure"),
          "P and Q are fixed (only merges change them) and stored as one (index, scale) per row of P and column "
          "of Q, O(m + n) to apply. The bias sits inside P (b = P b'), which the paper leaves implicit: it writes "
          "only the column case. Parameters m'n' + m' per layer, + 1 for FN's g; P and Q are not counted."),
    Entry("4.1", "Eq. (8)", "the ratio r of two parallel vectors",
          r"r = \frac{\sum w_d}{\sum w_k}\ \text{(printed)}, \qquad r = \frac{\langle w_d, w_k \rangle}"
          r"{\langle w_k, w_k \rangle}\ \text{(least squares)}, \qquad s = \sqrt{r^2 + 1}",
          ("numpy_dlra.dlra.equations.fusion_ratio",),
          ("numpy_dlra.dlra.layer.FactorizedLayer.fuse",),
          ("tests/test_equations.py::test_ratio_estimators",
           "tests/test_reliability.py::test_zero_vectors_and_the_papers_ratio_at_a_zero_sum_give_no_nan"),
          "Reading: --fuse-ratio lstsq (default; the best fit for nearly parallel pairs) or sum (the paper's, "
          "unstable when sum(w_k) ~ 0; the engine falls back to lstsq there). Both are exact for parallel "
          "vectors. Reasoned, not measured: docs/choices.md. equations.fusion_ratio also defaults to lstsq."),
    Entry("4.1", "Eqs. (7), (9)-(12)", "fusing two columns, or two rows (corrected)",
          r"w_k \leftarrow s\,w_k,\ w_d \text{ dropped}; \quad q_k \leftarrow (r\,q_d + q_k)/s,\ q_d \text{ dropped};"
          r" \quad x'_k = (r\,x_d + x_k)/s",
          ("numpy_dlra.dlra.equations.fuse_columns", "numpy_dlra.dlra.equations.fuse_rows"),
          ("numpy_dlra.dlra.layer.FactorizedLayer.fuse", "numpy_dlra.dlra.layer.LayerFactors.fuse_columns",
           "numpy_dlra.dlra.layer.LayerFactors.fuse_rows"),
          ("tests/test_equations.py::test_fusing_parallel_columns_preserves_everything",
           "tests/test_equations.py::test_fusing_parallel_rows_of_w_fits_the_bias_by_least_squares",
           "tests/test_equations.py::test_the_shorter_vector_is_kept_in_place",
           "tests/test_fusion.py::test_engine_fuses_as_the_equations_do",
           "tests/test_fusion.py::test_any_sequence_of_exact_fusions_preserves_the_network_output"),
          "k is the kept (shorter) vector, d the dropped one, w_d = r w_k. Eq. (7) corrected as Eq. (11) is (see "
          "the erratum). Rows mirror columns with P: p_k <- (r p_d + p_k)/s, and the merged row's bias is the "
          "least-squares b'_k <- (r b'_d + b'_k)/s, exact when b'_d = r b'_k. For exactly parallel vectors W'Q "
          "(P W'), the other axis' Gram and ||W'||_F are unchanged."),
    Entry("4.1", "Eq. (11), erratum", "the printed row of Q changes the layer's function",
          r"\text{printed: } q_k \leftarrow (q_d + r\,q_k)/s; \qquad \text{corrected: } q_k \leftarrow (r\,q_d + q_k)/s",
          ("numpy_dlra.dlra.equations.fuse_columns",),
          ("numpy_dlra.dlra.layer.LayerFactors.fuse_columns",),
          ("tests/test_equations.py::test_printed_eq11_is_wrong_and_the_corrected_form_holds",
           "tests/test_erratum.py::test_the_printed_eq11_is_off_by_r_minus_1_times_w_k_outer_q_d_minus_q_k"),
          "Erratum. With the paper's indices (column i dropped, w_i = r w_j) Eq. (11) prints (q_i + q_j r)/s; "
          "true minus printed is (r - 1) w_k (q_d - q_k), nonzero unless r = 1 or q_d = q_k. The code implements "
          "(r q_i + q_j)/s, and Eq. (7)'s x'_k = (r x_d + x_k)/s (docs/method.md Sec. 5)."),
    Entry("4.1", "Sec. 4.1, rows", "the rows fused are the rows of W' that RaRe(W'^T) pulls together",
          r"w'_d = r\,w'_k: \quad w'_k \leftarrow s\,w'_k, \quad p_k \leftarrow (r\,p_d + p_k)/s, \quad"
          r" b'_k \leftarrow (r\,b'_d + b'_k)/s",
          ("numpy_dlra.dlra.equations.fuse_rows",),
          ("numpy_dlra.dlra.pairs.ClosestPairs.test_kind", "numpy_dlra.dlra.merge.candidate"),
          ("tests/test_rows.py::test_rare_pulls_the_pair_that_eq13_tests",
           "tests/test_rows.py::test_square_layers_fuse_rows_as_readily_as_columns",
           "tests/test_rows.py::test_the_bias_reading_breaks_the_invariant",
           "tests/test_rows.py::test_with_the_bias_reading_square_layers_freeze"),
          "Reading: --row-vectors w (default), the rows of W', so one closest pair per layer and axis serves "
          "RaRe and Eq. (13); wb tests and fuses augmented rows [w', b'], the earlier reading, kept for the runs "
          "made with it: its row merges stall (3.3 % against 49.6 % compression after 30 full-data epochs, "
          "docs/choices.md, 'Which rows Eq. (13) tests')."),

    Entry("Eq. 13", "Eq. (13)", "when to fuse",
          r"1 - |D_{\cos}(i, j)| < \tau_{\cos} \ \text{and}\ D_{euc}(i, j) < \tau_{euc}, \quad D_{euc}(i, j) ="
          r" \Bigl\| w_i \frac{|w_j|}{|w_i|} - c\,w_j \Bigr\| = |w_j| \sqrt{2 (1 - |D_{\cos}|)}, \quad c = \operatorname{sign} D_{\cos},"
          r" \quad \tau_{\cos} = 10^{-4},\ \tau_{euc} = 0.1",
          ("numpy_dlra.dlra.equations.meets_eq13", "numpy_dlra.dlra.equations.merge_criterion",
           "numpy_dlra.dlra.equations.euclidean_distance", "numpy_dlra.dlra.equations.d_euc_from_cos"),
          ("numpy_dlra.dlra.merge.candidate", "numpy_dlra.dlra.merge.find_pair", "numpy_dlra.dlra.merge.merge_step"),
          ("tests/test_equations.py::test_merge_criterion_and_distance_identity",
           "tests/test_fusion.py::test_merge_test_is_eq13",
           "tests/test_fusion.py::test_eq13_on_effective_reads_the_networks_weights",
           "tests/test_fusion.py::test_which_pairs_eq13_fuses_when_the_closest_pair_is_too_far_apart",
           "tests/test_fusion.py::test_one_fuses_at_most_once_per_layer_axis_and_step",
           "tests/test_fusion.py::test_merge_pairs_any_falls_back_on_the_effective_weights"),
          "c = +1 when D_cos > 0, else -1 (the comparison is lost in the source). D_euc is asymmetric; the code "
          "rescales the longer vector to the kept shorter one, D_euc = |w_k| sqrt(2 (1 - |cos|)) "
          "(d_euc_from_cos, from the Gram). Readings: --eq13-on effective (default; the network's weights c W', "
          "measured: 3.7x the compression at the same accuracy, with --row-vectors wb) or w (W' as stored); "
          "--merge-pairs closest "
          "(default; fuse while the closest pair passes), one, or any. docs/choices.md."),

    Entry("4.3", "Sec. 4.3", "feature-space reduction for ReLU",
          r"\mathrm{relu}(p\,u) = |p|\,\mathrm{relu}(\operatorname{sign}(p)\,u), \qquad m' \le G \le \min(m, 2m')",
          ("numpy_dlra.dlra.network.FactorizedMLP.to_dense",),
          ("numpy_dlra.dlra.features.FeatureGroups.of", "numpy_dlra.dlra.features.GroupReLU",
           "numpy_dlra.dlra.features.connector"),
          ("tests/test_factorized.py::test_feature_groups_are_keyed_by_row_and_sign",
           "tests/test_factorized.py::test_factorized_net_equals_its_dense_form_for_any_signs",
           "tests/test_factorized.py::test_input_gradient_through_connectors_and_groups"),
          "Outputs sharing (row of W', sign of p) are positive multiples of one feature; the network carries one "
          "coordinate per group and folds |p| into the next layer's connector M = Q diag|p|. Exact for any "
          "signs: the reference is the dense P FN(W') Q it must equal."),
    Entry("4.3", "Export", "the compressed network out: Eqs. (7)-(12) and Sec. 4.3 folded into a plain MLP",
          r"W_l = \operatorname{diag}(s)\,(c_l W'_l)_{r,:}\,M_l,\quad b_l = s \odot b'_{l,r}; \qquad "
          r"W_L = P_L\,c_L W'_L\,M_L,\quad b_L = P_L b'_L",
          ("numpy_dlra.dlra.network.FactorizedMLP.to_dense",),
          ("numpy_dlra.dlra.network.FactorizedMLP.export", "numpy_dlra.experiments.export.export_run"),
          ("tests/test_export.py::test_the_fold_is_exact_for_any_widths_and_signs",
           "tests/test_export.py::test_the_papers_network_after_real_merges",
           "tests/test_export.py::test_the_plain_forward_in_the_docs_runs_the_file_without_the_package"),
          "Not in the paper, which counts W' but never takes the smaller network out. Hidden layer l of the plain "
          "MLP has the G_l reduced features (rows r and signs s of Sec. 4.3's groups); M_l is the connector (Q with "
          "the previous layer's |P| folded in). Its weight count is sum G_l G_{l-1}, which can exceed the W' count: "
          "a layer whose columns fused keeps the previous layer's full feature width as input. `numpy-dlra export` "
          "prints both counts."),
    Entry("4.3", "Eq. (14)", "dropout decay",
          r"r = r_0\,\frac{n}{n_0}, \qquad n = G \text{ (the reduced feature dimension)},\ n_0 = m,\ r_0 = 0.2",
          ("numpy_dlra.dlra.equations.dropout_rate",),
          ("numpy_dlra.dlra.network.FactorizedMLP.rebuild", "numpy_dlra.nn.layers.Dropout"),
          ("tests/test_equations.py::test_dropout_rate_decay",
           "tests/test_factorized.py::test_dropout_rate_decays_with_the_feature_dimension",
           "tests/test_readings.py::test_eq14_rate_uses_the_reduced_feature_dimension_not_m_prime"),
          "n is the current feature dimension G, not m' (G > m' when a row is read with both signs). One mask "
          "entry per group: the units of a group are dropped together."),

    Entry("4.5", "Eq. (15)", "Frobenius Normalization",
          r"\mathrm{FN}(W') = k\,g\,\frac{W'}{\|W'\|_F} = c\,W', \qquad k = \|W'\|_F \text{ at initialization},\ g_0 = 1",
          ("numpy_dlra.dlra.equations.frobenius_normalize", "numpy_dlra.dlra.equations.frobenius_normalize_backward"),
          ("numpy_dlra.dlra.ops.FNLinear", "numpy_dlra.dlra.ops.fn_scale", "numpy_dlra.dlra.ops.fn_backward_inplace"),
          ("tests/test_equations.py::test_frobenius_normalization_and_its_gradient",
           "tests/test_factorized.py::test_in_place_fn_backward_is_the_equations_one"),
          "The bias is not normalized (u = c W' Q x + b'). The engine multiplies by W' and scales the product by "
          "c. FN(a W') = FN(W'), so the function ignores ||W'|| and the gradient in W' is orthogonal to W'."),

    Entry("Eqs. 16-18", "Eq. (16)", "RaRe over layers and both axes, weighted by size",
          r"L_{\mathrm{RaRe}} = \frac{1}{2C} \sum_l m'_l n'_l \bigl[\mathrm{RaRe}(W'_l) + \mathrm{RaRe}(W'^{\top}_l)\bigr],"
          r" \qquad C = \sum_l m'_l n'_l",
          ("numpy_dlra.dlra.equations.rare_loss_total",),
          ("numpy_dlra.dlra.rare.rare_term", "numpy_dlra.dlra.pairs.ClosestPairs.rare_axes"),
          ("tests/test_equations.py::test_rare_loss_total_weights_by_size",
           "tests/test_fusion.py::test_rare_term_is_eq16_and_its_gradient_matches_central_differences"),
          "The row term is on W'^T without the bias, as printed. Reading: --rare-axes all (default, Eq. 16 as "
          "printed) or fusable (only the axes that may fuse now; an experiment). docs/choices.md."),
    Entry("Eqs. 16-18", "Eq. (17)", "the L2 term",
          r"L_{L2} = \frac{1}{N} \sum_l \|W'_l\|_2^2 \qquad (\text{read as } \|W'_l\|_F^2)",
          ("numpy_dlra.nn.losses.l2_penalty", "numpy_dlra.nn.losses.l2_penalty_grad"),
          ("numpy_dlra.nn.losses.add_l2_", "numpy_dlra.models.base.Classifier.add_l2",
           "numpy_dlra.dlra.network.FactorizedMLP.add_l2"),
          ("tests/test_losses.py::test_l2_penalty_grad",
           "tests/test_readings.py::test_each_l2_reading_is_its_definition_and_its_gradient_checks",
           "tests/test_readings.py::test_merges_keep_p_and_q_unit_norm_so_dense_is_effective",
           "tests/test_readings.py::test_decoupled_l2_shrinks_w_outside_adam"),
          "||.||_2 read as Frobenius (weight decay; biases and g excluded). Under FN the term on W' only shrinks "
          "W', which enlarges Adam's effective step. Readings: --l2-on w (default, as printed; measured best of "
          "the readings at lambda2 0.1), effective (FN(W')) or dense (P FN(W') Q, equal to effective); "
          "--l2-mode loss (default, through Adam) or decoupled (AdamW-style, measured in docs/results.md). "
          "--lambda2 0 beats every reading (docs/choices.md, 'L2 under FN')."),
    Entry("Eqs. 16-18", "Eq. (18)", "the total loss",
          r"L = L_{\text{task}} + \lambda_1 L_{\mathrm{RaRe}} + \lambda_2 L_{L2}, \qquad \lambda_1 = 20,\ \lambda_2 = 0.1",
          ("numpy_dlra.dlra.reference.loss_and_grads", "numpy_dlra.nn.losses.softmax_cross_entropy"),
          ("numpy_dlra.dlra.algorithm1.train_step", "numpy_dlra.models.base.Classifier.loss_and_grads"),
          ("tests/test_fusion.py::test_whole_dlra_loss_gradient_elementwise",
           "tests/test_readings.py::test_whole_loss_gradient_with_the_dense_reading",
           "tests/test_readings.py::test_summed_task_loss_weighs_the_task_batch_size_times_more",
           "tests/test_losses.py::test_cross_entropy_grad"),
          "L_task is softmax cross-entropy. Reading: --task-loss mean (default; the paper does not say) or sum, "
          "which weighs lambda1 and lambda2 batch-size times less (measured in docs/results.md)."),

    Entry("Algorithm 1", "Algorithm 1", "one training step (loss, noise, Adam, closest pairs, merges)",
          "",
          ("numpy_dlra.dlra.reference.train_step",),
          ("numpy_dlra.dlra.algorithm1.train_step",),
          ("tests/test_reference.py::test_the_engine_makes_the_references_merges_and_parameters",
           "tests/test_algorithm1.py::test_the_trainer_is_a_loop_over_train_step"),
          "The reference is Algorithm 1 from the equations alone (dense P, W', Q; no shared Gram; no dropout or "
          "noise); the test starts it from the engine's state every step and asks for the same merges and "
          "parameters. The paper says 'the pair' meeting Eq. (13) is merged after each update; the default "
          "--merge-pairs closest merges while the closest pair passes."),
    Entry("Algorithm 1", "Algorithm 1, merges and Adam", "Adam's moments through a merge",
          r"m_k \leftarrow (r\,m_d + m_k)/s, \qquad v_k \leftarrow (r^2 v_d + v_k)/s^2",
          ("numpy_dlra.dlra.reference.merge",),
          ("numpy_dlra.dlra.layer.FactorizedLayer.fuse",),
          ("tests/test_fusion.py::test_adam_moments_are_carried_as_documented",
           "tests/test_fusion.py::test_the_merged_vectors_gradient_is_r_g_d_plus_g_k_over_s"),
          "Not in the paper. m carries exactly (the merged vector's gradient is (r g_d + g_k)/s, tested by "
          "backward passes around a merge); v is its "
          "analogue. Reading: --adam-merge carry (default) or reset (zeros). Reasoned: docs/choices.md."),

    Entry("Other architectures", "Conv, the kernel as a matrix",
          "a kernel kh x kw x C_i x C_o held as P FN(W') Q: its C_o x (kh kw C_i) matrix (tutorials/11_convolutions.py)",
          r"W_{o,(h,w,c)} = K_{h,w,c,o}, \quad W = P\,\mathrm{FN}(W')\,Q \in \mathbb{R}^{C_o \times k_h k_w C_i}, \quad"
          r" \text{row } o: k_h \times k_w \times C_i \times 1, \quad \text{column } (h, w, c): 1 \times 1 \times 1 \times C_o",
          ("numpy_dlra.dlra.reference.ConvDenseLayer", "numpy_dlra.dlra.reference.ConvDenseLayer.apply"),
          ("numpy_dlra.dlra.conv_layer.ConvLayer", "numpy_dlra.dlra.conv_layer.ConvLayer.forward",
           "numpy_dlra.dlra.conv_network.FactorizedCNN", "numpy_dlra.dlra.conv_network.FactorizedCNN.from_cnn"),
          ("tests/test_conv_layer.py::test_the_factorized_cnn_computes_the_dense_cnn",
           "tests/test_conv_layer.py::test_gradients_are_central_differences_with_random_P_and_Q",
           "tests/test_tutorials.py::test_tutorial_prints_its_expected_output[11_convolutions.py]"),
          "Not built in the paper, which names the shapes and leaves the rest to future work (docs/convolutions.md). "
          "The kernel is read in (h, w, c) order, the matrix im2col multiplies the patches by. A column, by "
          "--conv-columns: channel (default), all kh kw positions of one input channel (W' stored m' x kh kw n', "
          "Q (n' x C_i) mixes the channels before the patches: the layer stays a kh x kw convolution with n' input "
          "channels); coord, one (h, w, c_i) coordinate, the paper's words (Q (n' x kh kw C_i) acts on the patches). "
          "FactorizedCNN is the seed CNN (conv 3x3, conv 3x3, max pool, dense, dense): layers 1-3 are ConvLayers, "
          "the dense layer after the pool a convolution whose kernel covers the pooled image; the last is a "
          "FactorizedLayer. Eq. (16) weighs a layer by the entries of its W'."),
    Entry("Other architectures", "Conv, fusing filters, channels and coordinates",
          "exactly parallel filters, channels or coordinates fuse without changing the CNN",
          r"\max\text{-}\mathrm{pool}(\mathrm{relu}(p\,u)) = p\,\max\text{-}\mathrm{pool}(\mathrm{relu}(u)),\ p > 0",
          ("numpy_dlra.dlra.reference.ConvDenseLayer.cols", "numpy_dlra.dlra.reference.ConvDenseLayer.fusable_axes",
           "numpy_dlra.dlra.reference.DenseLayer.fuse"),
          ("numpy_dlra.dlra.conv_layer.ConvLayer.view", "numpy_dlra.dlra.conv_layer.ConvLayer.drop",
           "numpy_dlra.dlra.conv_layer.ConvLayer.fusable_axes", "numpy_dlra.dlra.conv_layer.ConvLayer.build",
           "numpy_dlra.dlra.layer.FactorizedLayer.fuse"),
          ("tests/test_conv_layer.py::test_relu_and_max_pooling_commute_with_a_positive_scale",
           "tests/test_conv_layer.py::test_an_exactly_parallel_pair_fuses_without_changing_the_cnn_in_both_implementations",
           "tests/test_conv_layer.py::test_the_engine_makes_the_references_merges_and_parameters_on_a_cnn"),
          "The fusions are the MLP's (Eqs. 7-12, corrected) on the layer's view of W': a channel column is the "
          "m' kh kw entries that read one input channel. A fused output channel stays exact through ReLU and max "
          "pooling, which commute with a positive scale; a negative one is a feature group of Sec. 4.3, by channel. "
          "Which axes, by --conv-axes: both (default, measured in docs/choices.md: 52.9 % against 16.2 % compression "
          "at the same accuracy) or longer (equations.fusable_axes on m' and the number of columns). The pair search builds a columns x columns and a rows x rows Gram per layer every step; for the "
          "seed CNN's dense layer after the pool the columns Gram is 4608 x 4608 under coord, 32 x 32 under channel "
          "(its rows Gram 256 x 256 under both; docs/convolutions.md)."),
    Entry("Other architectures", "Conv, export", "the plain CNN out, with fewer channels",
          r"K_l = \operatorname{reshape}\bigl(\operatorname{diag}(s)\,(c_l W'_l M_l)_{r,:}\bigr) \in"
          r" \mathbb{R}^{k_h \times k_w \times G_{l-1} \times G_l}",
          ("numpy_dlra.dlra.reference.ConvDenseLayer.to_dense",),
          ("numpy_dlra.dlra.conv_layer.ConvLayer.export", "numpy_dlra.dlra.conv_network.FactorizedCNN.export",
           "numpy_dlra.dlra.conv_network.FactorizedCNN.exported_model", "numpy_dlra.experiments.export.export_run"),
          ("tests/test_conv_layer.py::test_the_export_is_a_narrower_plain_cnn_with_the_same_logits",
           "tests/test_conv_layer.py::test_the_export_with_channel_maps_keeps_merged_input_channels_out_of_the_kernels"),
          "As the MLP's export (Sec. 4.3 folded), per kernel position: rows r and signs s of the feature groups, "
          "M the connector (Q with the previous layer's |P| folded in). Folded, the kernel reads all G_{l-1} "
          "features of the previous layer (a mix of two ReLU channels is no channel of a plain CNN): only fused "
          "rows make it narrower. numpy-dlra export RUN --out FILE.npz writes K1, K2, W3, W4 and the biases; with "
          "--channel-maps (channel columns) M2, M3 are kept as 1 x 1 maps before the kernels, which then read n' "
          "channels, so fused input channels shrink the file too (experiments.export.cnn_forward runs either)."),

    Entry("5", "Sec. 5, network", "the MLP 784-500x5-10 (ReLU, softmax output)",
          "",
          ("numpy_dlra.models.mlp.MLP",),
          ("numpy_dlra.models.mlp.MLP", "numpy_dlra.dlra.network.FactorizedMLP.from_dense"),
          ("tests/test_mlp.py::test_paper_network_random_direction",
           "tests/test_mlp.py::test_tiny_network_every_parameter_elementwise"),
          "Baseline and fn train the dense MLP (fn through FactorizedMLP with P = Q = I); DLRA starts from it."),
    Entry("5", "Sec. 5, dropout", "dropout 0.2, not on the output",
          r"y = x \odot \mathrm{mask} / (1 - r_0), \qquad \mathrm{mask}_i \sim \mathrm{Bernoulli}(1 - r_0)",
          ("numpy_dlra.nn.layers.Dropout",),
          ("numpy_dlra.nn.layers.Dropout",),
          ("tests/test_layers.py::test_dropout_backward_uses_the_forward_mask",
           "tests/test_layers.py::test_dropout_keeps_the_expectation"),
          "Inverted dropout after each hidden ReLU (docs/choices.md); for DLRA on the reduced features (Eq. 14)."),
    Entry("5", "Sec. 5, Adam", "Adam, lr 1e-3, betas (0.9, 0.999)",
          r"m \leftarrow \beta_1 m + (1 - \beta_1) g, \ v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \ p \leftarrow p -"
          r" \eta\,\frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon}",
          ("numpy_dlra.nn.optim.adam_update",),
          ("numpy_dlra.nn.fast.adam_step_", "numpy_dlra.nn.optim.Adam.step"),
          ("tests/test_optim.py::test_adam_update_is_the_papers_formula",
           "tests/test_optim.py::test_the_fast_adam_step_is_bitwise_the_textbook_update",
           "tests/test_optim.py::test_adam_matches_the_textbook_formula"),
          "The fast form is blocked for the CPU's cache (one fused kernel per array on a GPU) and bitwise the "
          "textbook one. eps = 1e-8 is not stated in the paper (docs/choices.md)."),
    Entry("5", "Sec. 5, gradient noise", "annealed gradient noise (Neelakantan et al. 2015)",
          r"g \leftarrow g + \sigma_t z, \quad z \sim \mathcal{N}(0, I), \qquad \sigma_t^2 = \eta / (1 + t)^{0.55}",
          ("numpy_dlra.nn.optim.gradient_noise", "numpy_dlra.nn.optim.noise_variance",
           "numpy_dlra.nn.optim.raw_noise", "numpy_dlra.nn.optim.raw_integers", "numpy_dlra.nn.optim.box_muller_raw",
           "numpy_dlra.nn.optim.standard_normal"),
          ("numpy_dlra.nn.fast.add_gradient_noise", "numpy_dlra.nn.fast.standard_normal"),
          ("tests/test_optim.py::test_the_fast_noise_is_bitwise_the_textbook_noise",
           "tests/test_optim.py::test_the_fast_raw_noise_is_bitwise_the_textbook",
           "tests/test_optim.py::test_the_noise_streams_are_gaussian",
           "tests/test_optim.py::test_the_fast_draws_are_bitwise_the_textbook_box_muller",
           "tests/test_optim.py::test_noise_schedule_is_a_variance",
           "tests/test_optim.py::test_added_noise_has_the_scheduled_variance"),
          "sigma_t^2 is a variance. The paper does not give eta: --grad-noise-eta 1e-4 is our choice (0 = off); "
          "3-epoch accuracies for 0, 1e-4, 1e-3 and 1e-2 are in docs/choices.md. How z is drawn is not the "
          "paper's: --grad-noise-stream raw (default) or uniform (runs made before it), both Box-Muller, both "
          "tested for their moments and tails."),
    Entry("5", "Table 1", "parameter and FLOP counts",
          r"\#\text{params} = \sum_l m_l n_l + m_l = 1{,}399{,}510, \qquad \text{FLOPs} = 2 \sum_l m_l n_l = 2{,}794{,}000",
          ("numpy_dlra.models.mlp.MLP.param_count", "numpy_dlra.models.mlp.MLP.flops_per_sample"),
          ("numpy_dlra.dlra.network.FactorizedMLP.param_count", "numpy_dlra.dlra.network.FactorizedMLP.flops_per_sample",
           "numpy_dlra.dlra.network.FactorizedMLP.flops_paper"),
          ("tests/test_mlp.py::test_counts_match_the_paper",
           "tests/test_readings.py::test_paper_flops_count_the_products_between_reduced_feature_spaces"),
          "FLOPs: 2 per weight (2.79 M, Table 1). For DLRA flops_per_sample counts 2 m'n' (1.94 M at Table 2's "
          "shapes; P, Q are O(m + n) gathers) and flops_paper 2 sum_l feat_{l-1} feat_l, which gives the paper's "
          "2.09 M: an inference, the paper does not state its rule (docs/method.md Sec. 11)."),
    Entry("5", "Table 2", "which axes may fuse (the shapes)",
          r"|m' - n'| \le 1 \text{ in layers 2-5}",
          ("numpy_dlra.dlra.equations.fusable_axes",),
          ("numpy_dlra.dlra.layer.FactorizedLayer.fusable_axes", "numpy_dlra.dlra.reference.DenseLayer.fusable_axes"),
          ("tests/test_fusion.py::test_which_axes_may_fuse",
           "tests/test_reliability.py::test_a_layer_fused_down_to_one_vector_keeps_working"),
          "Rules read from Table 2 (docs/method.md Sec. 11): only the longer axis of W' (both when square); never "
          "the first layer's columns (the pixels) or the last layer's rows (the classes); the last layer's "
          "columns not below the class count."),

    Entry("Sainath et al. 2013", "Sainath, layer", "the fixed-rank layer B (C x) + b",
          r"y = B\,(C\,x) + b, \qquad B \in \mathbb{R}^{m \times r},\ C \in \mathbb{R}^{r \times n}",
          ("numpy_dlra.nn.lowrank.LowRankLinear",),
          ("numpy_dlra.nn.lowrank.LowRankLinear",),
          ("tests/test_lowrank.py::test_low_rank_layer_gradients_elementwise",
           "tests/test_lowrank.py::test_mlp_with_a_fixed_rank_last_layer_whole_network_gradient")),
    Entry("Sainath et al. 2013", "Sainath, rank bound", "the rank that keeps fewer than a fraction p of the weights",
          r"m r + r n < p\,m n \iff r < \frac{p\,m n}{m + n}",
          ("numpy_dlra.dlra.equations.reduction_rank",),
          (),
          ("tests/test_lowrank.py::test_reduction_rank_is_the_largest_rank_under_the_bound",
           "tests/test_lowrank.py::test_reduction_rank_report_examples"),
          "p is the fraction that remains. A bound, not a step of training: sweep-rank --ranks takes the ranks given."),
    Entry("Sainath et al. 2013", "Sainath, SVD", "the best rank-r approximation (Eckart-Young)",
          r"W \approx U_r S_r V_r^\top = B C, \quad B = U_r S_r^{1/2},\ C = S_r^{1/2} V_r^\top, \quad"
          r" \|W - B C\|_2 = \sigma_{r+1}",
          ("numpy_dlra.dlra.equations.truncate_svd",),
          ("numpy_dlra.experiments.compare.compare_ranks",),
          ("tests/test_lowrank.py::test_truncated_svd_error_is_the_next_singular_value",)),
    Entry("Sainath et al. 2013", "Sainath, CNN", "the small CNN (conv 32 3x3, conv 32 3x3, max pool 2x2, dense 256)",
          "",
          ("numpy_dlra.nn.conv.Conv2D", "numpy_dlra.nn.conv.MaxPool2D", "numpy_dlra.models.cnn.CNN"),
          ("numpy_dlra.nn.conv.Conv2D", "numpy_dlra.nn.conv.MaxPool2D", "numpy_dlra.models.cnn.CNN"),
          ("tests/test_cnn.py::test_whole_cnn_gradient", "tests/test_cnn.py::test_convolution_equals_the_direct_sum")),
]

_ROOT = Path(__file__).resolve().parent  # numpy_dlra/


def _split(path):
    """("numpy_dlra.dlra.equations", "cos_matrix") for "numpy_dlra.dlra.equations.cos_matrix": the longest
    prefix that is a module file of this package, and the attribute path after it."""
    parts = path.split(".")
    if parts[0] == _ROOT.name:
        for i in range(len(parts) - 1, 1, -1):
            if _ROOT.joinpath(*parts[1:i]).with_suffix(".py").is_file():
                return ".".join(parts[:i]), ".".join(parts[i:])
    raise LookupError(f"{path!r} names no module of the {_ROOT.name} package")


def resolve(path):
    """The object a dotted path names (a module attribute, or Class.method); LookupError if there is none."""
    module, attrs = _split(path)
    obj = importlib.import_module(module)
    for name in attrs.split("."):
        if not hasattr(obj, name):
            raise LookupError(f"{path!r}: {getattr(obj, '__name__', obj)!s} has no attribute {name!r}")
        obj = getattr(obj, name)
    return obj


def _paths_cell(paths):
    """`dlra/equations.py`: `rare`, `rare_grad`; `dlra/rare.py`: `rare_term`: each module named once."""
    groups = {}
    for p in paths:
        module, attrs = _split(p)
        groups.setdefault(module.split(".", 1)[1].replace(".", "/") + ".py", []).append(f"`{attrs}`")
    return "; ".join(f"`{m}`: " + ", ".join(names) for m, names in groups.items()) or "—"


def section_name(key):
    """'4.1' -> 'Sec. 4.1'; a named section ('Eq. 13', 'Algorithm 1') as it is."""
    return f"Sec. {key}" if re.fullmatch(r"[\d.]+", key) else key


def section_markers(key):
    """The pytest markers of a section's tests: SECTION_MARKERS', else 'sec' and its number (4.1 -> sec4_1),
    else its first word and number in lower case ('Algorithm 1' -> algorithm1)."""
    if key in SECTION_MARKERS:
        return tuple(SECTION_MARKERS[key])
    if re.fullmatch(r"[\d.]+", key):
        return ("sec" + key.replace(".", "_"),)
    return ("".join(re.findall(r"[a-z0-9]+", " ".join(key.lower().split()[:2]))),)


def _numbers(first, last):
    return range(int(first), int(last or first) + 1)


def label_markers(label):
    """The markers an entry's label names: eqN for each equation number, '(7), (9)-(12)' included; tableN;
    algN; the section of 'Sec. 4.1'; 'erratum'; for a label naming none of these, its first word ('export')."""
    names = [f"eq{n}" for a, b in re.findall(r"\((\d+)\)(?:\s*-\s*\((\d+)\))?", label) for n in _numbers(a, b)]
    names += [f"table{n}" for n in re.findall(r"\bTable (\d+)", label)]
    names += [f"alg{n}" for n in re.findall(r"\bAlgorithm (\d+)", label)]
    for sec in re.findall(r"\bSec\. (\d+(?:\.\d+)*)", label):
        names += section_markers(sec)
    if re.search(r"\berratum\b", label, re.I):
        names.append("erratum")
    if not names:
        names.append(re.findall(r"[a-z0-9]+", label.lower())[0])
    return tuple(dict.fromkeys(names))


def entry_markers(entry):
    """The pytest markers of every test `entry` names: its section's, then its label's."""
    return tuple(dict.fromkeys(section_markers(entry.section) + label_markers(entry.label)))


def markers(entries=ENTRIES):
    """{marker: the tests (node ids, in map order) that carry it}. A test carries the markers of every entry
    naming it; ``pytest -m NAME`` selects exactly ``markers()[NAME]``."""
    out = {}
    for e in entries:
        for name in entry_markers(e):
            tests = out.setdefault(name, [])
            tests += [t for t in e.tests if t not in tests]
    return out


def marker_descriptions(entries=ENTRIES):
    """{marker: one line for ``pytest --markers``}: the section, or the entries, whose tests carry it."""
    titles, what = dict(SECTIONS), {}
    for e in entries:
        for name in section_markers(e.section):
            what.setdefault(name, [f"{section_name(e.section)} ({titles.get(e.section, e.section)}), all of it"])
    sections = set(what)
    for e in entries:
        for name in label_markers(e.label):
            if name not in sections and e.label not in what.setdefault(name, []):
                what[name].append(e.label)
    return {name: "the tests numpy_dlra.paper_map names for " + "; ".join(w) for name, w in what.items()}


def marked_tests(entries=ENTRIES):
    """{test node id: the markers it carries}, for tests/conftest.py."""
    out = {}
    for name, tests in markers(entries).items():
        for t in tests:
            out.setdefault(t, []).append(name)
    return out


def selector(entry, entries=ENTRIES):
    """A ``-m`` marker that selects exactly the tests `entry` names, or None if none of its markers does."""
    found = markers(entries)
    own = label_markers(entry.label) + section_markers(entry.section)  # the most specific first
    return next((m for m in own if set(found[m]) == set(entry.tests)), None)


def pytest_command(entry, entries=ENTRIES):
    """The command that runs the tests `entry` names: ``pytest -m eq8``, else their node ids."""
    if not entry.tests:
        return ""
    m = selector(entry, entries)
    return f"pytest -m {m}" if m else "pytest " + " ".join(f"'{t}'" if "[" in t else t for t in entry.tests)


def markdown_table(entries=ENTRIES):
    """The map as a Markdown table: paper | reference | training runs | tests | markers. Paths under
    numpy_dlra/; tests as full node ids, to paste after ``pytest``; ``pytest -m MARKER`` runs a marker's tests."""
    rows = ["| paper | reference | training runs | tests | markers |", "|---|---|---|---|---|"]
    for e in entries:
        engine = "the same" if e.engine and e.engine == e.reference else _paths_cell(e.engine)
        tests = ", ".join(f"`{t}`" for t in e.tests) or "—"
        cells = [f"{e.label}: {e.title}", _paths_cell(e.reference), engine, tests,
                 ", ".join(f"`{m}`" for m in entry_markers(e))]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)
