"""The fast paths of the recommender against slow reference implementations, and negative sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.recommend import Recommender
from training.recommend.similarity import ease_weights, top_k_rows


def _top_k_rows_reference(M, k):
    M = sp.csr_matrix(M)
    M.eliminate_zeros()
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
    cols, vals = M.indices, M.data
    keep = vals > 0
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    start = np.r_[0, np.flatnonzero(np.diff(rows)) + 1]
    rank = np.arange(len(rows)) - np.repeat(start, np.diff(np.r_[start, len(rows)]))
    return rows[rank < k], cols[rank < k], vals[rank < k]


def test_top_k_rows_matches_full_sort_with_ties():
    M = sp.random(300, 200, density=0.3, random_state=3, format="csr")
    M.data = np.round(M.data * 10) / 10 - 0.1  # many ties, some zero and negative entries
    for k in (1, 3, 10, 250):
        got, want = top_k_rows(M, k, chunk=64), _top_k_rows_reference(M, k)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_ease_weights_single_precision_close_to_double():
    rng = np.random.default_rng(0)
    X = (rng.random((400, 120)) < 0.1).astype(float)
    G = X.T @ X
    lam = 30.0
    A = G + lam * np.eye(len(G))
    P = np.linalg.inv(A)
    want = -P / np.diag(P)[None, :]
    np.fill_diagonal(want, 0.0)
    got = ease_weights(G, lam)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_negative_sampling_keeps_every_positive_and_caps_negatives():
    rng = np.random.default_rng(1)
    n = 2000
    df = pd.DataFrame({"cutoff": rng.integers(0, 2, n), "cust": rng.integers(0, 20, n),
                       "label": (rng.random(n) < 0.1).astype(np.int8)})
    m = Recommender(max_negatives=5, random_state=0)
    out = m._sample_negatives(df)
    assert out["label"].sum() == df["label"].sum()
    neg = out[out["label"] == 0].groupby(["cutoff", "cust"]).size()
    full = df[df["label"] == 0].groupby(["cutoff", "cust"]).size()
    assert (neg <= 5).all()
    assert (neg == full.clip(upper=5).loc[neg.index]).all()
    pd.testing.assert_frame_equal(out, m._sample_negatives(df))  # seeded
    assert len(Recommender(max_negatives=None)._sample_negatives(df)) == n


def test_discovery_ranker_has_smaller_better_populated_trees():
    m = Recommender()  # all: 31 leaves, 50 rows per leaf; discovery: 15 leaves, 200 rows per leaf
    assert m._tree_params("all", 1_000_000) == (31, 50)
    assert m._tree_params("discovery", 1_000_000) == (15, 200)
    # capped at rows // (2 * leaves), so a small shop still grows trees
    assert m._tree_params("discovery", 3_000) == (15, 100)
    assert m._tree_params("all", 1_000) == (31, 16)
    assert m._tree_params("discovery", 10) == (15, 1)
    # None: the discovery ranker uses the `all` settings
    same = Recommender(num_leaves=7, min_child_samples=20, discovery_num_leaves=None, discovery_min_child_samples=None)
    assert same._tree_params("discovery", 1_000_000) == same._tree_params("all", 1_000_000) == (7, 20)
    lgbm = m._ranker(10, *m._tree_params("discovery", 1_000_000))
    assert (lgbm.get_params()["num_leaves"], lgbm.get_params()["min_child_samples"]) == (15, 200)
