"""The CVPR 2018 paper's pointwise evaluation: ratio of GT points with geodesic error below t cm.

Each DensePose ground truth (GT) takes the detection with the highest box IoU (if it reaches
``min_iou``); the geodesic errors of its points go into a histogram on a fine grid, from which
the curve and its areas (AUC10, AUC30) are read.
"""
from __future__ import annotations

import numpy as np

#: Geodesic error thresholds in cm (fine grid, for the AUCs and the plot).
CURVE_STEP_CM = 0.05
CURVE_MAX_CM = 30.0
HIST_EDGES_CM = np.arange(0.0, CURVE_MAX_CM + CURVE_STEP_CM / 2, CURVE_STEP_CM)


class PointwiseCurve:
    """Accumulates the pointwise histogram over batches; ``summary()`` gives the curve."""

    def __init__(self, min_iou: float):
        self.min_iou = min_iou
        self.hist = np.zeros(len(HIST_EDGES_CM), dtype=np.int64)  # hist[k]: error in (t[k-1], t[k]]
        self.total = 0  # GT points of DensePose GTs (the denominator: unmatched points count as wrong)
        self.num_gt = 0
        self.num_matched = 0

    def add_gts(self, num_gt: int, num_points: int) -> None:
        self.num_gt += num_gt
        self.total += num_points

    def select_pairs(self, pair_gt: np.ndarray, dp: np.ndarray, box_iou: np.ndarray) -> np.ndarray:
        """(N,) bool over pairs: each DensePose GT (``dp`` (G,) over ``pair_gt`` (N,)) takes the
        detection with the highest box IoU (N,) (the first one on a tie, as argmax), if that
        reaches ``min_iou``."""
        selected = np.zeros(len(box_iou), dtype=bool)
        pairs = np.flatnonzero(dp[pair_gt])
        if not len(pairs):
            return selected
        pairs = pairs[np.argsort(pair_gt[pairs], kind="stable")]  # by GT, detections in order
        g = pair_gt[pairs]
        first = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
        v = box_iou[pairs]
        best = np.maximum.reduceat(v, first)
        top = np.repeat(best, np.diff(np.concatenate([first, [len(v)]])))
        at = np.flatnonzero(v == top)  # the best of each GT, ties included
        at = at[np.concatenate([[True], g[at[1:]] != g[at[:-1]]])]  # the first of each GT
        ok = v[at] >= self.min_iou
        selected[pairs[at[ok]]] = True
        self.num_matched += int(ok.sum())
        return selected

    def add_errors(self, dist_m: np.ndarray) -> None:
        """Geodesic errors (n,) in metres of the points of selected pairs."""
        k = np.searchsorted(HIST_EDGES_CM, dist_m * 100.0, side="left")
        self.hist += np.bincount(k[k < len(self.hist)], minlength=len(self.hist))

    def summary(self) -> dict:
        n = self.total
        ratio = np.cumsum(self.hist) / max(n, 1)  # fraction of points with error <= t, at HIST_EDGES_CM
        t = HIST_EDGES_CM

        def auc(a: float) -> float:
            m = t <= a + 1e-9
            r, x = ratio[m], t[m]
            return float(np.sum((r[1:] + r[:-1]) * np.diff(x)) / 2.0 / a) if n else -1.0

        at = {f"{c:g}": float(ratio[int(round(c / CURVE_STEP_CM))]) if n else -1.0 for c in (1, 2, 5, 10, 15, 20, 30)}
        step = int(round(0.5 / CURVE_STEP_CM))
        return {
            "auc10": auc(10.0), "auc30": auc(30.0), "ratio_at_cm": at,
            "num_points": int(n), "num_gt": int(self.num_gt), "num_gt_matched": int(self.num_matched),
            "min_box_iou": self.min_iou,
            "curve_cm": t[::step].round(3).tolist(),
            "curve_ratio": ratio[::step].round(6).tolist(),
        }
