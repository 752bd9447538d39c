"""DBSCAN for every eps at once: one structure per (points, minPts), then labels per eps in O(n).

All lengths nm; squared distances nm^2 are compared exactly as ``compute.clusters.dbscan_labels``
compares them (``dx * dx + dy * dy <= eps * eps``), so the labels are those of
``sklearn.cluster.DBSCAN(eps, min_samples)``, numbering and border choice included.

For a fixed minPts m the structure holds (docs/SCIENCE.md §5.2):

* the core distance c_i of every point: the distance to its (m - 1)-th nearest other point, so i
  is a core point at eps exactly when c_i <= eps (m points, itself included, within eps);
* a minimum spanning forest of the mutual reachability graph, edge weight
  max(c_i, c_j, d_ij), restricted to pairs with d_ij <= eps_max: the core points within eps of
  each other form connected components that are exactly the components of the forest edges
  of weight <= eps (a cut of the forest);
* the m - 1 nearest neighbours of every point (sorted by distance): a point that is not core at
  eps has fewer than m - 1 points closer than c_i > eps, so all its neighbours within eps, hence
  all the core points it can be attached to, are in that list.

``DbscanTree.labels(eps)`` then numbers the clusters as sklearn does (by the first core point in
input order, since sklearn expands clusters from core points in input order) and gives each
border point the smallest label among its core neighbours (the first cluster that reaches it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from compute.clusters import _N_CHUNKS, _as_xy, _find, _number_groups, _open_windows, _slide_windows, _Strips, _window, watch

_TREE_STRIPS_PER_RADIUS = 4


@njit(cache=True, parallel=True)
def _nearest_neighbours(xs, ys, start, neighbour, reach, radius2, n_nearest):
    """The n_nearest nearest other points of each sorted point within radius (sorted index, -1 pads),
    sorted by squared distance, and those squared distances (inf pads)."""
    n, n_strips = xs.size, start.size - 1
    nearest = np.full((n, n_nearest), -1, dtype=np.int64)
    nearest_d2 = np.full((n, n_nearest), np.inf)
    n_chunks = min(_N_CHUNKS, n_strips)
    for chunk in prange(n_chunks):
        for a in range(chunk * n_strips // n_chunks, (chunk + 1) * n_strips // n_chunks):
            lo, hi = _open_windows(a, start, neighbour)
            for i in range(start[a], start[a + 1]):
                _slide_windows(a, ys[i], ys, start, neighbour, reach, lo, hi)
                if n_nearest == 0:
                    continue
                row, row_d2 = nearest[i], nearest_d2[i]
                for q in range(lo.size):
                    for j in range(lo[q], hi[q]):
                        dx, dy = xs[j] - xs[i], ys[j] - ys[i]
                        d2 = dx * dx + dy * dy
                        if j == i or d2 > radius2 or d2 >= row_d2[n_nearest - 1]:
                            continue
                        slot = n_nearest - 1  # insertion into the sorted row
                        while slot > 0 and row_d2[slot - 1] > d2:
                            row_d2[slot] = row_d2[slot - 1]
                            row[slot] = row[slot - 1]
                            slot -= 1
                        row_d2[slot] = d2
                        row[slot] = j
    return nearest, nearest_d2


@njit(cache=True)
def _lighter(w, u, v, best_w, best_u, best_v):
    """(w, u, v) < (best_w, best_u, best_v) lexicographically (u < v): a strict order on edges."""
    if w != best_w:
        return w < best_w
    if u != best_u:
        return u < best_u
    return v < best_v


@njit(cache=True)
def _boruvka_round(xs, ys, start, neighbour, reach, core2, radius2, component, best_w, best_u, best_v):
    """For every component, its lightest outgoing edge of weight max(c_i^2, c_j^2, d_ij^2) <= radius2."""
    for a in range(start.size - 1):
        lo, hi = _open_windows(a, start, neighbour)
        for i in range(start[a], start[a + 1]):
            _slide_windows(a, ys[i], ys, start, neighbour, reach, lo, hi)
            ci = component[i]
            if ci < 0:
                continue  # never core, or in a finished component
            for q in range(lo.size // 2, lo.size):
                j_lo, j_hi = _window(q, i, lo, hi, True)
                for j in range(j_lo, j_hi):
                    cj = component[j]
                    if cj < 0 or cj == ci:
                        continue
                    dx, dy = xs[j] - xs[i], ys[j] - ys[i]
                    w = max(dx * dx + dy * dy, core2[i], core2[j])
                    if w > radius2:
                        continue
                    u, v = min(i, j), max(i, j)
                    if _lighter(w, u, v, best_w[ci], best_u[ci], best_v[ci]):
                        best_w[ci], best_u[ci], best_v[ci] = w, u, v
                    if _lighter(w, u, v, best_w[cj], best_u[cj], best_v[cj]):
                        best_w[cj], best_u[cj], best_v[cj] = w, u, v


@njit(cache=True, nogil=True)
def _spanning_forest(xs, ys, start, neighbour, reach, core2, radius2, progress):
    """Minimum spanning forest of the mutual reachability graph (pairs with weight <= radius2),
    by Boruvka rounds. Returns edges (u, v, w) in sorted-point indices; progress[0] counts rounds
    and progress[1] the components left (read by another thread for a progress bar)."""
    n = xs.size
    parent = np.arange(n)
    component = np.full(n, -1, dtype=np.int64)
    active = core2 <= radius2
    edge_u = np.empty(max(n - 1, 0), dtype=np.int64)
    edge_v = np.empty(max(n - 1, 0), dtype=np.int64)
    edge_w = np.empty(max(n - 1, 0))
    n_edges = 0
    best_w = np.empty(n)
    best_u = np.empty(n, dtype=np.int64)
    best_v = np.empty(n, dtype=np.int64)
    while True:
        n_components = 0
        for i in range(n):
            component[i] = _find(parent, i) if active[i] else -1
            n_components += active[i] and component[i] == i
        progress[1] = n_components
        best_w[:] = np.inf
        best_u[:] = -1
        best_v[:] = -1
        _boruvka_round(xs, ys, start, neighbour, reach, core2, radius2, component, best_w, best_u, best_v)
        added = 0
        for c in range(n):
            if component[c] != c:
                continue
            if best_u[c] < 0:  # no edge leaves this component: it is finished for good
                continue
            root_u, root_v = _find(parent, best_u[c]), _find(parent, best_v[c])
            if root_u != root_v:
                parent[max(root_u, root_v)] = min(root_u, root_v)
                edge_u[n_edges], edge_v[n_edges], edge_w[n_edges] = best_u[c], best_v[c], best_w[c]
                n_edges += 1
                added += 1
        for i in range(n):  # finished components drop out of the next rounds
            if active[i] and best_u[component[i]] < 0:
                active[i] = False
        progress[0] += 1
        if added == 0:
            break
    return edge_u[:n_edges], edge_v[:n_edges], edge_w[:n_edges]


@njit(cache=True)
def _leaf_order(n, edge_u, edge_v, edge_w2):
    """Kruskal over the forest edges (sorted by weight), concatenating point lists on each merge.

    Returns the points in list order and, per position, the weight of the merge that joined the
    point to its predecessor (inf at the start of a tree). Every component of the forest edges of
    weight <= t is then a run of consecutive positions, cut wherever that weight exceeds t.
    """
    parent = np.arange(n)
    head = np.arange(n)
    tail = np.arange(n)
    after = np.full(n, -1, dtype=np.int64)
    joined_at = np.full(n, np.inf)
    for e in range(edge_u.size):
        root_u, root_v = _find(parent, edge_u[e]), _find(parent, edge_v[e])
        if root_u == root_v:
            continue
        after[tail[root_u]] = head[root_v]
        joined_at[head[root_v]] = edge_w2[e]
        tail[root_u] = tail[root_v]
        parent[root_v] = root_u
    order = np.empty(n, dtype=np.int64)
    merge_w2 = np.empty(n)
    k = 0
    for root in range(n):
        if parent[root] != root:
            continue
        i = head[root]
        while i >= 0:
            order[k] = i
            merge_w2[k] = joined_at[i]
            k += 1
            i = after[i]
    return order, merge_w2


@njit(cache=True)
def _labels_at(eps2, xs, ys, core2, leaf_order, merge_w2, nearest, order):
    """sklearn's DBSCAN labels at eps, in input order (all other arrays in sorted order, ``order``
    maps sorted to input index): cut the leaf order where the merge weight exceeds eps^2,
    number the core runs by their first core point in input order, attach border points to the
    smallest label among their core neighbours."""
    n = xs.size
    run_of = np.empty(n, dtype=np.int64)
    n_runs = 0
    for k in range(n):
        n_runs += merge_w2[k] > eps2
        run_of[leaf_order[k]] = n_runs - 1
    labels = _number_groups(run_of, core2 <= eps2, order, n_runs)
    for s in range(n):
        if core2[s] <= eps2:
            continue
        best = -1
        for t in range(nearest.shape[1]):
            j = nearest[s, t]
            if j < 0:
                break
            dx, dy = xs[j] - xs[s], ys[j] - ys[s]
            if dx * dx + dy * dy > eps2:
                break  # the row is sorted by distance
            if core2[j] <= eps2 and (best < 0 or labels[j] < best):
                best = labels[j]
        labels[s] = best
    in_input_order = np.empty(n, dtype=np.int64)
    for s in range(n):
        in_input_order[order[s]] = labels[s]
    return in_input_order


@dataclass(frozen=True)
class DbscanTree:
    """DBSCAN of fixed points and minPts for every eps in (0, eps_max_nm] (see the module docstring).

    Points are kept in the spatial order of ``compute.clusters._Strips`` (``xs``, ``ys`` nm; ``order``
    maps it to input indices), for memory locality; all indices below are in that order.
    ``core2`` squared core distances (nm^2, inf = never core up to eps_max), ``nearest`` the
    min_samples - 1 nearest neighbours within eps_max (row sorted by distance, -1 pads). The
    forest is kept as ``leaf_order`` with ``merge_w2``, the squared weight (nm^2) of the forest
    merge that joined each position to the previous one.
    """

    xs: np.ndarray
    ys: np.ndarray
    order: np.ndarray
    min_samples: int
    eps_max_nm: float
    core2: np.ndarray
    nearest: np.ndarray
    leaf_order: np.ndarray
    merge_w2: np.ndarray

    @classmethod
    def build(cls, x_nm, y_nm, min_samples: int, eps_max_nm: float, progress=None) -> DbscanTree:
        """Precompute for ``min_samples`` (>= 1) and every eps up to ``eps_max_nm`` (nm).

        ``progress(fraction, message)`` is called between stages and from a watcher thread
        during the spanning forest (one Boruvka round per report).
        """
        if not eps_max_nm > 0:
            raise ValueError("eps_max_nm must be > 0")
        if min_samples < 1:
            raise ValueError("min_samples must be >= 1")
        report = progress or (lambda fraction, message: None)
        x, y = _as_xy(x_nm, y_nm)
        n = x.size
        index_dtype = np.int32 if n < 2**31 else np.int64
        if n == 0:
            return cls(x, y, np.empty(0, dtype=index_dtype), int(min_samples), float(eps_max_nm), np.empty(0),
                       np.empty((0, int(min_samples) - 1), dtype=index_dtype), np.empty(0, dtype=index_dtype),
                       np.empty(0))
        radius2 = float(eps_max_nm) * float(eps_max_nm)
        report(0.02, f"Nearest neighbours of {n:,} localisations")
        strips = _Strips.build(x, y, eps_max_nm, _TREE_STRIPS_PER_RADIUS)
        index = (strips.xs, strips.ys, strips.start, strips.neighbour, strips.reach)
        with numba.parallel_chunksize(1):
            nearest_sorted, nearest_d2 = _nearest_neighbours(*index, radius2, int(min_samples) - 1)
        core2_sorted = nearest_d2[:, -1].copy() if min_samples > 1 else np.zeros(n)
        report(0.3, "Spanning forest of mutual reachability")
        forest_progress = np.zeros(2, dtype=np.int64)
        edge_u, edge_v, edge_w2 = watch(
            lambda: _spanning_forest(*index, core2_sorted, radius2, forest_progress),
            lambda: report(min(0.3 + 0.06 * forest_progress[0], 0.95),
                           f"Spanning forest: round {forest_progress[0] + 1}, "
                           f"{forest_progress[1]:,} components"))
        by_weight = np.argsort(edge_w2, kind="stable")
        leaf_order, merge_w2 = _leaf_order(n, edge_u[by_weight], edge_v[by_weight], edge_w2[by_weight])
        report(1.0, "Done")
        return cls(strips.xs, strips.ys, strips.order.astype(index_dtype), int(min_samples), float(eps_max_nm),
                   core2_sorted, nearest_sorted.astype(index_dtype), leaf_order.astype(index_dtype), merge_w2)

    @property
    def n(self) -> int:
        return int(self.xs.size)

    def labels(self, eps_nm: float) -> np.ndarray:
        """Labels identical to ``sklearn.cluster.DBSCAN(eps=eps_nm, min_samples).fit(xy).labels_``."""
        if not 0 < eps_nm <= self.eps_max_nm:
            raise ValueError(f"eps_nm must be in (0, {self.eps_max_nm:g}] nm for this tree")
        eps2 = float(eps_nm) * float(eps_nm)
        return _labels_at(eps2, self.xs, self.ys, self.core2, self.leaf_order, self.merge_w2, self.nearest, self.order)
