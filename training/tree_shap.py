"""Exact path-dependent TreeSHAP of a LightGBM model from per-leaf tables: LightGBM's own
``pred_contrib`` numbers, about 10x faster for a handful of rows and faster still for large batches.

LightGBM computes SHAP contributions row by row with the recursive TreeSHAP algorithm: about 1 ms per
row for the churn model (256 trees), a hundred times its plain prediction. That is most of a one-customer
``/churn`` request and most of ``ecrm score``. The same numbers come from tables built once per model:

For one tree, the path-dependent expectation given a feature set S weighs each leaf by a product over
the distinct features k on the leaf's path: ``o_k`` (1 if the row satisfies every split on k along the
path, else 0) when k is in S, ``z_k`` (the share of the training rows that followed those splits, from
the node counts) when it is not. So the leaf's share of feature j's Shapley value is

    v * (o_j - z_j) * sum_t w_m(t) * c_t,   c_t = coefficient of y^t in prod_{k != j} (o_k * y + z_k)

with ``m`` the number of distinct features on the path and ``w_m(t) = t! (m - 1 - t)! / m!``. It depends
on the row only through which of the path's features it satisfies: a mask of ``m`` bits. Each leaf gets
a table over its ``2^m`` masks (the "precomputation" variant of TreeSHAP), and a row's contributions are
then its split decisions, one mask per leaf, and a sum of table entries: array operations over all trees
at once. Missing values follow LightGBM's rules (``missing_type`` None / Zero / NaN, ``default_left``).

Only numerical splits are supported (the customer models have no categorical features):
:func:`tree_shap_tables` raises ``NotImplementedError`` otherwise, and callers use LightGBM's own.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from math import factorial

import numpy as np
from scipy import sparse

_ZERO = 1e-35  # LightGBM's kZeroThreshold: |x| <= this counts as zero for missing_type Zero
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
# rows per pass: the work arrays are (path features of every leaf x rows), ~26k x rows for the churn model,
# so smaller passes stay in the caches: 100k-customer bench model (408 trees), one thread, 376 us per row
# with 256 rows, 247 with 64 (229 with the int32 table positions)
_CHUNK_ROWS = 64


@dataclass(frozen=True)
class TreeShapTables:
    """Everything needed to compute the contributions of rows; see the module docstring.

    A leaf's mask bit for a feature split once on its path is linear in the node's decision (``left`` or
    ``1 - left``), so those bits come from one sparse product; features split several times on a path
    need every split satisfied and are counted edge by edge.
    """

    n_features: int
    expected_value: float  # LightGBM's last ``pred_contrib`` column: the trees' average raw score
    node_feature: np.ndarray  # (nodes,) every internal node of every tree
    node_threshold: np.ndarray  # (nodes, 1)
    node_nan_left: np.ndarray  # (nodes, 1) where a NaN goes (LightGBM: as 0.0 unless NaN is the missing value)
    zero_nodes: np.ndarray  # the nodes whose missing value is zero, and where zero goes
    zero_left: np.ndarray
    leaf_nodes: sparse.csr_matrix  # (leaves, nodes) +-2**bit: mask bits of features split once on the path
    leaf_const: np.ndarray  # (leaves, 1) the right-hand edges' 2**bit
    repeat_edge_node: np.ndarray  # edges of features split several times on a leaf's path
    repeat_edge_left: np.ndarray  # (edges, 1)
    repeat_group_edges: sparse.csr_matrix  # (such groups, such edges)
    leaf_repeats: sparse.csr_matrix  # (leaves, such groups) 2**bit
    leaf_offset: np.ndarray  # (leaves, 1) where the leaf's table starts in ``table``
    leaf_width: np.ndarray  # (leaves, 1) m: the leaf's distinct path features (its table rows have m entries)
    group_leaf: np.ndarray  # (groups,) one group per (leaf, distinct path feature)
    group_bit: np.ndarray  # (groups, 1) the feature's bit in the leaf's mask
    feature_groups: sparse.csr_matrix  # (n_features, groups) 1 for the group's feature
    table: np.ndarray  # every leaf's (2^m, m) table, flattened

    def contributions(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """(rows, n_features + 1): each feature's contribution and, last, the expected value, like
        ``Booster.predict(X, pred_contrib=True)``. ``threads`` > 1 computes chunks of rows in that many
        threads (numpy and scipy's sparse products release the GIL: 2 threads, about 2x on two cores);
        the numbers do not depend on it."""
        X = np.asarray(X, dtype="float64")
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got an array of shape {X.shape}")
        out = np.zeros((len(X), self.n_features + 1))
        out[:, -1] = self.expected_value

        def fill(start: int) -> None:  # chunks write disjoint rows of ``out``
            rows = slice(start, start + _CHUNK_ROWS)
            out[rows, :-1] = self._chunk(X[rows])

        starts = range(0, len(X), _CHUNK_ROWS)
        if threads > 1 and len(starts) > 1:
            with ThreadPoolExecutor(max_workers=int(threads)) as pool:
                list(pool.map(fill, starts))  # list(): re-raises a chunk's exception here
        else:
            for start in starts:
                fill(start)
        return out

    def _chunk(self, X: np.ndarray) -> np.ndarray:
        """Contributions of a few hundred rows at most; arrays are (things, rows) so rows stay contiguous.
        Gathers along the first axis use ``np.take``: for a few rows (the service's micro-batches) it is
        several times faster than fancy indexing, which walks the short rows element by element."""
        if self.group_leaf.size == 0 or len(X) == 0:
            return np.zeros((len(X), self.n_features))
        left = self._goes_left(X.T)  # (nodes, rows)
        masks = self.leaf_nodes @ left.astype("float64") + self.leaf_const  # (leaves, rows)
        if self.repeat_edge_node.size:
            broken = (np.take(left, self.repeat_edge_node, axis=0) != self.repeat_edge_left).astype("float64")
            masks += self.leaf_repeats @ ((self.repeat_group_edges @ broken) == 0).astype("float64")
        # positions in ``table`` (int32 where it is small enough: half the memory traffic), in place
        starts = masks.astype(self.leaf_offset.dtype)  # (leaves, rows)
        starts *= self.leaf_width
        starts += self.leaf_offset
        at = np.take(starts, self.group_leaf, axis=0)  # (groups, rows)
        at += self.group_bit
        values = self.table.take(at)
        return (self.feature_groups @ values).T

    def _goes_left(self, XT: np.ndarray) -> np.ndarray:
        """LightGBM's numerical decision at every internal node (rows), for every row (columns)."""
        v = np.take(XT, self.node_feature, axis=0)
        with np.errstate(invalid="ignore"):
            left = np.where(np.isnan(v), self.node_nan_left, v <= self.node_threshold)
        if self.zero_nodes.size:
            z = self.zero_nodes
            left[z] = np.where(np.abs(np.take(v, z, axis=0)) <= _ZERO, self.zero_left, np.take(left, z, axis=0))
        return left


def _leaf_table(value: float, zeros: np.ndarray) -> np.ndarray:
    """(2^m, m) contributions of one leaf of value ``value`` whose distinct path features have the zero
    fractions ``zeros``, for every mask of satisfied features (bit b = feature b satisfied)."""
    m = len(zeros)
    bits = ((np.arange(2 ** m)[:, None] >> np.arange(m)) & 1).astype("float64")  # (masks, m)
    weights = np.array([factorial(t) * factorial(m - 1 - t) / factorial(m) for t in range(m)])
    table = np.empty((2 ** m, m))
    for j in range(m):
        coef = np.zeros((2 ** m, m))  # coefficients of prod_{k != j} (o_k y + z_k), degree < m
        coef[:, 0] = 1.0
        for k in range(m):
            if k == j:
                continue
            o = bits[:, k:k + 1]
            coef = zeros[k] * coef + o * np.concatenate([np.zeros((2 ** m, 1)), coef[:, :-1]], axis=1)
        table[:, j] = value * (bits[:, j] - zeros[j]) * (coef @ weights)
    return table


def _paths(node: dict, path: list, out: list) -> None:
    """Collect (leaf value, [(node dict, went left, child count / node count), ...]) for every leaf."""
    if "leaf_value" in node and "split_feature" not in node:
        out.append((float(node["leaf_value"]), list(path)))
        return
    if node.get("decision_type", "<=") != "<=":
        raise NotImplementedError(f"categorical split ({node['decision_type']}) in the model: not supported here")
    total = float(node["internal_count"])
    for child, went_left in ((node["left_child"], True), (node["right_child"], False)):
        count = float(child.get("internal_count", child.get("leaf_count", 0)))
        path.append((node, went_left, count / total if total > 0 else 0.0))
        _paths(child, path, out)
        path.pop()


def tree_shap_tables(booster, num_iteration: int | None = None) -> TreeShapTables:
    """The tables of a LightGBM ``Booster`` (binary or regression: one tree per iteration), for the first
    ``num_iteration`` trees (all when None), as its ``predict(..., num_iteration=...)`` uses them."""
    dump = booster.dump_model(num_iteration=num_iteration)
    if dump.get("num_tree_per_iteration", 1) != 1:
        raise NotImplementedError("multiclass models are not supported here")
    node_ids: dict[int, int] = {}
    nodes: list[dict] = []
    groups: list[tuple[int, int, int, list]] = []  # (leaf, bit, feature, [(node index, went left), ...])
    l_offset: list[int] = []
    l_width: list[int] = []
    tables: list[np.ndarray] = []
    expected, offset = 0.0, 0
    for tree in dump["tree_info"]:
        leaves: list = []
        _paths(tree["tree_structure"], [], leaves)
        for value, path in leaves:
            features: list[int] = []  # distinct path features in order of first use
            zeros: dict[int, float] = {}
            for node, _left, ratio in path:
                f = int(node["split_feature"])
                if f not in zeros:
                    features.append(f)
                    zeros[f] = 1.0
                zeros[f] *= ratio
            z = np.array([zeros[f] for f in features])
            expected += value * float(np.prod(z)) if len(z) else value
            if not features:
                continue  # a tree of one leaf: only the expected value
            leaf = len(l_offset)
            l_offset.append(offset)
            l_width.append(len(features))
            for bit, f in enumerate(features):
                edges = []
                for node, went_left, _ratio in path:
                    if int(node["split_feature"]) == f:
                        if id(node) not in node_ids:
                            node_ids[id(node)] = len(nodes)
                            nodes.append(node)
                        edges.append((node_ids[id(node)], went_left))
                groups.append((leaf, bit, f, edges))
            table = _leaf_table(value, z)
            tables.append(table.ravel())
            offset += table.size
    return _assemble(booster.num_feature(), expected, nodes, groups, l_offset, l_width, tables)


def _assemble(n_features: int, expected: float, nodes: list[dict], groups: list[tuple[int, int, int, list]],
              l_offset: list[int], l_width: list[int], tables: list[np.ndarray]) -> TreeShapTables:
    """Index arrays of the tables from the groups: (leaf, bit, feature, [(node index, went left), ...])."""
    n_nodes, n_leaves, n_groups = len(nodes), len(l_offset), len(groups)
    lin_rows, lin_cols, lin_vals = [], [], []
    const = np.zeros(n_leaves)
    rep_node, rep_left, rep_group, rep_leaf, rep_pow = [], [], [], [], []
    for leaf, bit, _feature, edges in groups:
        if len(edges) == 1:
            node, went_left = edges[0]
            lin_rows.append(leaf)
            lin_cols.append(node)
            lin_vals.append(2.0 ** bit if went_left else -(2.0 ** bit))
            const[leaf] += 0.0 if went_left else 2.0 ** bit
            continue
        rep_leaf.append(leaf)
        rep_pow.append(2.0 ** bit)
        for node, went_left in edges:
            rep_group.append(len(rep_leaf) - 1)
            rep_node.append(node)
            rep_left.append(went_left)
    missing = np.array([_MISSING[n.get("missing_type", "None")] for n in nodes], dtype=np.int8)
    threshold = np.array([float(n["threshold"]) for n in nodes])
    default_left = np.array([bool(n.get("default_left", False)) for n in nodes])
    # a NaN is the missing value (NaN type), or zero (Zero type: zero is missing; None type: compared as 0.0)
    nan_left = np.where(missing == 0, 0.0 <= threshold, default_left)
    zero = np.flatnonzero(missing == 1)
    n_rep = len(rep_leaf)
    table = np.concatenate(tables) if tables else np.zeros(0)
    at = np.int32 if len(table) < 2 ** 31 else np.int64  # positions in the table
    return TreeShapTables(
        n_features=n_features,
        expected_value=expected,
        node_feature=np.array([int(n["split_feature"]) for n in nodes], dtype=np.int64),
        node_threshold=threshold[:, None],
        node_nan_left=nan_left[:, None],
        zero_nodes=zero,
        zero_left=default_left[zero][:, None],
        leaf_nodes=_sparse(lin_rows, lin_cols, lin_vals, (n_leaves, n_nodes)),
        leaf_const=const[:, None],
        repeat_edge_node=np.array(rep_node, dtype=np.int64),
        repeat_edge_left=np.array(rep_left, dtype=bool)[:, None],
        repeat_group_edges=_sparse(rep_group, range(len(rep_node)), [1.0] * len(rep_node), (n_rep, len(rep_node))),
        leaf_repeats=_sparse(rep_leaf, range(n_rep), rep_pow, (n_leaves, n_rep)),
        leaf_offset=np.array(l_offset, dtype=at)[:, None],
        leaf_width=np.array(l_width, dtype=at)[:, None],
        group_leaf=np.array([g[0] for g in groups], dtype=np.int64),
        group_bit=np.array([g[1] for g in groups], dtype=at)[:, None],
        feature_groups=_sparse([g[2] for g in groups], range(n_groups), [1.0] * n_groups, (n_features, n_groups)),
        table=table,
    )


def _sparse(rows, cols, values, shape: tuple[int, int]) -> sparse.csr_matrix:
    """A sparse matrix with ``values`` at (``rows``, ``cols``)."""
    return sparse.csr_matrix((np.asarray(values, dtype="float64"), (np.asarray(rows, dtype=np.int64),
                                                                    np.asarray(cols, dtype=np.int64))), shape=shape)
