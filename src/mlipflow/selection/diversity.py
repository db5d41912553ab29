"""Diversity picks from descriptor matrices: farthest point sampling and PCA + clustering.

Both are deterministic for a seed and stay within laptop memory for 100,000+ frames (the descriptor matrix is
the largest object: 100k x 200 float32 is 80 MB).  FPS costs one distance pass over the pool per pick
(``O(n_picks x n_frames x dim)``); PCA + MiniBatchKMeans is linear in the pool size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from mlipflow.errors import ConfigError

logger = logging.getLogger(__name__)

#: above this many frames, PCA + k-means switches to MiniBatchKMeans
MINIBATCH_ABOVE = 20_000


@dataclass
class Pick:
    """One picked frame: its row in the pool and why (kept with the selection)."""

    index: int
    reason: str
    cluster: int | None = None
    distance: float | None = None


def farthest_point_sampling(x: np.ndarray, n: int, *, seed: int = 0, reference: np.ndarray | None = None,
                            start: int | None = None) -> list[Pick]:
    """Greedy farthest point sampling (Euclidean).

    Parameters
    ----------
    x
        Pool descriptors, shape (n_frames, dim).
    n
        Picks wanted (fewer if the pool is smaller).
    seed
        Seed of the first pick when there is no ``reference`` and no ``start``.
    reference
        Descriptors already in the dataset (n_ref, dim): picks are far from them too, and the first pick is the
        pool frame farthest from the reference.
    start
        Index of the first pick (overrides ``seed``).

    Returns
    -------
    list of Pick
        In pick order; ``distance`` is the distance to the nearest earlier pick (or reference frame) when picked.
    """
    x = np.asarray(x, dtype=np.float32)
    m = len(x)
    n = min(int(n), m)
    if n <= 0:
        return []
    sq = np.einsum("ij,ij->i", x, x)

    def dist2(row: np.ndarray) -> np.ndarray:
        return np.maximum(sq - 2.0 * (x @ row) + float(row @ row), 0.0)

    nearest = np.full(m, np.inf, dtype=np.float64)
    if reference is not None and len(reference):
        ref = np.asarray(reference, dtype=np.float32)
        for lo in range(0, len(ref), 1024):
            block = ref[lo : lo + 1024]
            d = sq[:, None] - 2.0 * (x @ block.T) + np.einsum("ij,ij->i", block, block)[None, :]
            nearest = np.minimum(nearest, np.maximum(d, 0.0).min(axis=1))
    picks: list[Pick] = []
    if start is not None:
        first = int(start)
        reason = "fps: given start"
    elif np.isfinite(nearest).any():
        first = int(np.argmax(nearest))
        reason = "fps: farthest from the dataset"
    else:
        first = int(np.random.default_rng(seed).integers(m))
        reason = f"fps: random start (seed {seed})"
    d_first = float(np.sqrt(nearest[first])) if np.isfinite(nearest[first]) else None
    picks.append(Pick(first, reason, distance=d_first))
    nearest = np.minimum(nearest, dist2(x[first]))
    for _ in range(n - 1):
        nearest[[p.index for p in picks[-1:]]] = -1.0
        k = int(np.argmax(nearest))
        if nearest[k] <= 0.0:
            break  # the rest are duplicates of picks
        picks.append(Pick(k, "fps: farthest from earlier picks", distance=float(np.sqrt(nearest[k]))))
        nearest = np.minimum(nearest, dist2(x[k]))
    return picks


@dataclass
class ClusterSelector:
    """PCA + k-means (or BIRCH) with stratified picks per cluster (FIRE's recipe on SOAP).

    Parameters
    ----------
    n_clusters
        Clusters (default: one per pick).
    n_components
        PCA components (capped by the data); 0 skips PCA.
    method
        ``kmeans`` (MiniBatchKMeans above :data:`MINIBATCH_ABOVE` frames), ``minibatch`` or ``birch``.
    within
        How to pick inside a cluster: ``centroid`` (nearest to the centre first, then FPS inside the cluster)
        or ``random`` (seeded).
    seed
        Seed of k-means and of random picks.
    """

    n_clusters: int | None = None
    n_components: int = 10
    method: Literal["kmeans", "minibatch", "birch"] = "kmeans"
    within: Literal["centroid", "random"] = "centroid"
    seed: int = 0
    labels_: np.ndarray | None = field(default=None, init=False, repr=False)

    def reduce(self, x: np.ndarray) -> np.ndarray:
        """Standardise and project on the first principal components."""
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        z = StandardScaler().fit_transform(np.asarray(x, dtype=np.float64)).astype(np.float32)
        k = min(self.n_components, z.shape[1], max(z.shape[0] - 1, 1))
        if self.n_components <= 0 or k >= z.shape[1]:
            return z
        return PCA(n_components=k, random_state=self.seed, svd_solver="randomized" if len(z) > 5000 else "auto"
                   ).fit_transform(z).astype(np.float32)

    def cluster(self, z: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
        """Cluster labels and centres."""
        from sklearn.cluster import Birch, KMeans, MiniBatchKMeans

        if self.method == "birch":
            model = Birch(n_clusters=n_clusters, threshold=0.5)
            labels = model.fit_predict(z)
            centres = np.array([z[labels == c].mean(axis=0) for c in range(labels.max() + 1)])
            return labels, centres
        if self.method == "minibatch" or (self.method == "kmeans" and len(z) > MINIBATCH_ABOVE):
            model = MiniBatchKMeans(n_clusters=n_clusters, random_state=self.seed, n_init=10,
                                    batch_size=4096)
        else:
            model = KMeans(n_clusters=n_clusters, random_state=self.seed, n_init=4)
        labels = model.fit_predict(z)
        return labels, model.cluster_centers_

    def select(self, x: np.ndarray, n: int) -> list[Pick]:
        """Pick ``n`` frames spread over clusters (at least one per cluster while picks last).

        Picks are allocated to clusters in proportion to their size (largest remainders), each non-empty
        cluster getting one first when ``n >= n_clusters``.
        """
        m = len(x)
        n = min(int(n), m)
        if n <= 0:
            return []
        n_clusters = min(self.n_clusters or n, m)
        if n_clusters < 1:
            raise ConfigError(f"n_clusters must be >= 1, got {self.n_clusters}")
        z = self.reduce(x)
        labels, centres = self.cluster(z, n_clusters)
        self.labels_ = labels
        ids = np.unique(labels)
        sizes = np.array([(labels == c).sum() for c in ids])
        alloc = _allocate(sizes, n)
        rng = np.random.default_rng(self.seed)
        picks: list[Pick] = []
        for c, size, k in zip(ids, sizes, alloc, strict=True):
            if k == 0:
                continue
            members = np.flatnonzero(labels == c)
            if self.within == "random":
                chosen = rng.choice(members, size=k, replace=False)
                why = ["random in cluster"] * k
            else:
                d = np.linalg.norm(z[members] - centres[c], axis=1)
                first = int(np.argmin(d))
                sub = farthest_point_sampling(z[members], k, start=first)
                chosen = members[[p.index for p in sub]]
                why = ["nearest to centroid"] + ["fps in cluster"] * (len(sub) - 1)
            for idx, w in zip(chosen, why, strict=True):
                picks.append(Pick(int(idx), f"{self.method}: cluster {int(c)} ({int(size)} frames), {w}",
                                  cluster=int(c)))
        return picks


def _allocate(sizes: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` picks over clusters of ``sizes``: one each first (largest clusters first), rest by size."""
    order = np.argsort(-sizes, kind="stable")
    alloc = np.zeros(len(sizes), dtype=int)
    for i in order[: min(n, len(sizes))]:
        alloc[i] = 1
    left = n - alloc.sum()
    if left > 0:
        room = sizes - alloc
        share = room / max(room.sum(), 1) * left
        extra = np.floor(share).astype(int)
        rem = left - extra.sum()
        for i in np.argsort(-(share - extra), kind="stable")[:rem]:
            extra[i] += 1
        alloc = np.minimum(alloc + extra, sizes)
        # clusters that were capped give their picks to the others, largest first
        short = n - alloc.sum()
        for i in order:
            if short <= 0:
                break
            add = min(short, sizes[i] - alloc[i])
            alloc[i] += add
            short -= add
    return alloc


def select_diverse(x: np.ndarray, n: int, method: Literal["fps", "kmeans", "minibatch", "birch"] = "fps", *,
                   seed: int = 0, reference: np.ndarray | None = None, **kwargs: object) -> list[Pick]:
    """Pick ``n`` diverse rows of ``x`` with FPS or PCA + clustering (see the two functions)."""
    if method == "fps":
        return farthest_point_sampling(x, n, seed=seed, reference=reference)
    if method in ("kmeans", "minibatch", "birch"):
        return ClusterSelector(method=method, seed=seed, **kwargs).select(x, n)  # type: ignore[arg-type]
    raise ConfigError(f"unknown diversity method {method!r}: use 'fps', 'kmeans', 'minibatch' or 'birch'")
