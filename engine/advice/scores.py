"""Transferability scores: how well features (or a source model's predictions) fit a target's labels, from one
forward pass and no training. numpy, float64, from the papers' formulas.

- **LogME** (You et al., ICML 2021; the fixed-point iteration of the JMLR 2022 version): the log marginal
  evidence, per sample, of a Bayesian linear model from the features to each class's one-hot column, averaged
  over classes.
- **H-score** (Bao et al., ICIP 2019): tr(cov(f)^+ cov(E[f | y])): the share of the features' variance that
  the class means explain.
- **LEEP** (Nguyen et al., ICML 2020): the log-likelihood of the target labels under the source head's
  softmax passed through the empirical P(target | source class).
- **NCE** (Tran et al., ICCV 2019): minus the conditional entropy H(target | source argmax).

None has an absolute scale (thuml/LogME#28): compare them only between layers or models on the same images.
"""

from __future__ import annotations

import numpy as np


def _one_hot_columns(labels: np.ndarray) -> list[np.ndarray]:
    y = np.asarray(labels).reshape(-1)
    return [(y == c).astype(np.float64) for c in np.unique(y)]


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME of features `[N, D]` for class labels `[N]`; higher is better."""
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    if n > d:  # the SVD of the D x D Gram matrix is cheaper than that of f
        _, s2, vh = np.linalg.svd(f.T @ f)
        s = np.sqrt(s2)
        k = int(np.sum(s > 1e-10))
        u = (f @ vh[:k].T) / s[:k]
        s = s[:k]
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s**2
    evidences = []
    for y in _one_hot_columns(labels):
        x2 = (u.T @ y) ** 2
        rest = float(y @ y - x2.sum())  # the part of y outside the features' span
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = float((sigma / (sigma + t)).sum())
            m2 = float((sigma * x2 / (t + sigma) ** 2).sum())
            res2 = float((x2 / (1 + sigma / t) ** 2).sum()) + rest
            alpha, beta = gamma / (m2 + 1e-5), (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * sigma))
                    - beta / 2 * res2 - alpha / 2 * m2 - n / 2 * np.log(2 * np.pi))
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def h_score(features: np.ndarray, labels: np.ndarray) -> float:
    """H-score of features `[N, D]` for class labels `[N]`; higher is better."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).reshape(-1)
    means = np.zeros_like(f)
    for c in np.unique(y):
        means[y == c] = f[y == c].mean(axis=0)
    cov_f = np.atleast_2d(np.cov(f, rowvar=False))
    cov_g = np.atleast_2d(np.cov(means, rowvar=False))
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-15) @ cov_g))


def _joint(source: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """P(target class, source class) `[C_t, C_s]` from per-sample source probabilities `[N, C_s]`."""
    y = np.asarray(labels).reshape(-1)
    classes = np.unique(y)
    return np.stack([source[y == c].sum(axis=0) for c in classes]) / len(y)


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """LEEP of the source head's softmax `[N, C_s]` for target labels `[N]`; higher is better (at most 0)."""
    p = np.asarray(source_probs, dtype=np.float64)
    y = np.asarray(labels).reshape(-1)
    joint = _joint(p, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        given = np.nan_to_num(joint / joint.sum(axis=0, keepdims=True))  # P(target | source), a column per z
    row = np.searchsorted(np.unique(y), y)
    return float(np.mean(np.log(np.einsum("ns,ns->n", p, given[row]))))


def nce(source_labels: np.ndarray, labels: np.ndarray) -> float:
    """NCE of the source head's predicted classes `[N]` for target labels `[N]`; higher is better (at most 0)."""
    z = np.asarray(source_labels).reshape(-1)
    one_hot = (z[:, None] == np.unique(z)[None, :]).astype(np.float64)
    joint = _joint(one_hot, labels)  # [C_t, source classes seen]
    p_z = joint.sum(axis=0)
    given = joint / p_z + 1e-20
    return float(np.sum(p_z * np.sum(given * np.log(given), axis=0)))
