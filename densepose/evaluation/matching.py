"""COCO-style greedy matching, accumulation and the 10-number summary of the DensePose protocol.

Given per image (and category) a similarity matrix between its top-scoring detections and its
ground truth (GPS, GPSm or mask IoU), this reproduces the official DensePose evaluator's
``evaluateImg`` / ``accumulate`` / ``_summarizeUvs``:

- thresholds 0.50:0.05:0.95 (or from a lower ``min_iou``, as detectron2), 101 recall points, at most 20 detections per image, area ranges
  all / medium / large (no small);
- ground truth without DensePose points is ignored, and so are people outside the area range;
- a detection that ends unmatched (at the last threshold) and overlaps an unmatched ground truth
  with box IoU >= 0.8 takes that ground truth's ignore flag at *all* thresholds, and is matched to
  it if it is ignored (the reference quirk, kept on purpose);
- in an image whose ground truth is all ignored (or empty) every detection is ignored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101, endpoint=True)
MAX_DETS = 20
AREA_RANGES = {"all": (0.0, 1e5 ** 2), "medium": (32.0 ** 2, 96.0 ** 2), "large": (96.0 ** 2, 1e5 ** 2)}
BOX_IGNORE_IOU = 0.8

def iou_thresholds(min_iou: float = 0.5) -> np.ndarray:
    """The matching thresholds min_iou:0.05:0.95 (detectron2's ``min_iou_threshold``; 0.5: ``IOU_THRESHOLDS``)."""
    if not 0.0 < min_iou <= 0.95:
        raise ValueError(f"min_iou must be in (0, 0.95], got {min_iou}")
    return np.linspace(min_iou, 0.95, int(np.round((0.95 - min_iou) / 0.05)) + 1, endpoint=True)


#: The printed summary: (name, AP?, IoU threshold or None, area range).
SUMMARY = (
    ("AP", True, None, "all"), ("AP50", True, 0.5, "all"), ("AP75", True, 0.75, "all"),
    ("APm", True, None, "medium"), ("APl", True, None, "large"),
    ("AR", False, None, "all"), ("AR50", False, 0.5, "all"), ("AR75", False, 0.75, "all"),
    ("ARm", False, None, "medium"), ("ARl", False, None, "large"),
)


@dataclass
class ImageEval:
    """Matching of one image and category at one area range (``evaluateImg`` output).

    matched: (T, D) bool, detection matched at threshold t; ignored: (T, D) bool;
    scores: (D,); gt_ignored: (G,) bool.
    """

    matched: np.ndarray
    ignored: np.ndarray
    scores: np.ndarray
    gt_ignored: np.ndarray


def evaluate_image(sim: np.ndarray, box_iou: np.ndarray, gt_ignore: np.ndarray, gt_area: np.ndarray,
                   gt_crowd: np.ndarray, dt_area: np.ndarray, dt_score: np.ndarray,
                   area_range: tuple[float, float]) -> ImageEval | None:
    """Greedy matching of one image (and category) at one area range, for one similarity (D, G).

    See ``match_image`` for the arguments.
    """
    out = match_image(np.asarray(sim, dtype=np.float64)[None], box_iou, gt_ignore, gt_area, gt_crowd, dt_area,
                      dt_score, [area_range])
    return None if out is None else out[0][0]


def match_image(sims: np.ndarray, box_iou: np.ndarray, gt_ignore: np.ndarray, gt_area: np.ndarray,
                gt_crowd: np.ndarray, dt_area: np.ndarray, dt_score: np.ndarray,
                area_ranges: list[tuple[float, float]]) -> list[list[ImageEval]] | None:
    """Greedy matching of one image (and category) for several similarities and area ranges at once.

    Every (similarity, area range, threshold) is an independent matching problem; they are solved
    together, one detection at a time, as rows of one array.

    Args:
        sims: (M, D, G) similarities (e.g. GPS, GPSm, IoU); detections sorted by score, at most 20.
        box_iou: (D, G) box IoU (for the 0.8 ignore rule).
        gt_ignore: (G,) bool, ground truth without DensePose points.
        gt_area, gt_crowd: (G,); dt_area, dt_score: (D,).
        area_ranges: A (lo, hi) ranges.
    Returns:
        ``out[m][a]`` an ``ImageEval``, or None when the image has neither detections nor ground truth.
    """
    cell = dict(sims=sims, box_iou=box_iou, gt_ignore=gt_ignore, gt_area=gt_area, gt_crowd=gt_crowd,
                dt_area=dt_area, dt_score=dt_score)
    return match_images([cell], area_ranges)[0]


def _last_argmax(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row, the last index of the largest value where ``mask`` holds; -1 for rows without any."""
    if values.shape[1] == 0:
        return np.full(len(values), -1, dtype=np.int64)
    cand = np.where(mask, values, -np.inf)
    idx = values.shape[1] - 1 - np.argmax(cand[:, ::-1], axis=1)
    idx[~mask.any(axis=1)] = -1
    return idx


def accumulate(evals: list[list[ImageEval | None]]) -> tuple[np.ndarray, np.ndarray]:
    """Per category k, the image evaluations -> precision (T, R, K) and recall (T, K); -1 where undefined."""
    T, R, K = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(evals)
    precision = -np.ones((T, R, K))
    recall = -np.ones((T, K))
    for k, cat_evals in enumerate(evals):
        E = [e for e in cat_evals if e is not None]
        if E:
            precision[:, :, k], recall[:, k] = precision_recall(
                np.concatenate([e.scores for e in E]), np.concatenate([e.matched for e in E], axis=1),
                np.concatenate([e.ignored for e in E], axis=1),
                np.count_nonzero(~np.concatenate([e.gt_ignored for e in E])))
    return precision, recall


def precision_recall(scores: np.ndarray, matched: np.ndarray, ignored: np.ndarray,
                     npig) -> tuple[np.ndarray, np.ndarray]:
    """The detections of one category, in image order -> precision (..., T, R) and recall (..., T).

    Args:
        scores (N,); matched, ignored (..., T, N) bool; npig (...,) ground truth not ignored.
    Rows without ground truth get -1 (undefined), as COCO's ``accumulate``.
    """
    R = len(RECALL_THRESHOLDS)
    inds = np.argsort(-scores, kind="mergesort")
    dtm, dt_ig = matched[..., inds], ignored[..., inds]
    npig = np.broadcast_to(np.asarray(npig), dtm.shape[:-2])
    tp = np.cumsum(dtm & ~dt_ig, axis=-1).astype(np.float64)
    fp = np.cumsum(~dtm & ~dt_ig, axis=-1).astype(np.float64)
    nd = tp.shape[-1]
    precision = np.zeros(tp.shape[:-1] + (R,))
    recall = np.zeros(tp.shape[:-1])
    if nd:
        with np.errstate(invalid="ignore", divide="ignore"):
            rc = tp / npig[..., None, None]
        pr = tp / (fp + tp + np.spacing(1))
        pr = np.maximum.accumulate(pr[..., ::-1], axis=-1)[..., ::-1]  # precision envelope
        recall = rc[..., -1]
        for i in np.ndindex(tp.shape[:-1]):
            idx = np.searchsorted(rc[i], RECALL_THRESHOLDS, side="left")
            keep = idx < nd
            precision[i][keep] = pr[i][idx[keep]]
    undefined = npig == 0
    precision[undefined], recall[undefined] = -1.0, -1.0
    return precision, recall


def accumulate_cells(cells: list[dict], area_ranges: list[tuple[float, float]], category: np.ndarray,
                     num_categories: int, batch: int = 256,
                     thresholds: np.ndarray = IOU_THRESHOLDS) -> tuple[np.ndarray, np.ndarray]:
    """``match_images`` then ``accumulate``, without a per-image ``ImageEval``.

    Args:
        cells: as for ``match_images``; category (C,) their category index in [0, num_categories).
    Returns:
        precision (M, A, T, R, K) and recall (M, A, T, K), K = num_categories.
    """
    M = cells[0]["sims"].shape[0] if cells else 3
    A, T, R, K = len(area_ranges), len(thresholds), len(RECALL_THRESHOLDS), num_categories
    parts, npig, present = [], np.zeros((K, A), dtype=np.int64), np.zeros(K, dtype=bool)
    category = np.asarray(category, dtype=np.int64)
    for s in range(0, len(cells), batch):
        chunk = cells[s:s + batch]
        matched, ignored, ig, Ds, Gs = _match_batch(chunk, area_ranges, thresholds)
        cat = category[s:s + len(chunk)]
        C, D = len(chunk), matched.shape[-1]
        real = np.arange(D) < Ds[:, None]  # (C, D) the cells' own detections, in order
        scores = np.zeros((C, D))
        for i, c in enumerate(chunk):
            scores[i, :Ds[i]] = c["dt_score"]
        pick = np.flatnonzero(real.ravel())
        flat = lambda x: np.moveaxis(x, 0, -2).reshape(x.shape[1:-1] + (C * D,))[..., pick]  # noqa: E731
        parts.append((np.repeat(cat, Ds), scores.ravel()[pick], flat(matched), flat(ignored)))
        for a in range(A):
            npig[:, a] += np.bincount(cat, weights=np.count_nonzero(~ig[:, a, :], axis=1), minlength=K).astype(np.int64)
        present[cat[(Ds > 0) | (Gs > 0)]] = True
    precision = -np.ones((M, A, T, R, K))
    recall = -np.ones((M, A, T, K))
    det_cat = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    for k in np.flatnonzero(present):
        sel = det_cat == k
        p, r = precision_recall(np.concatenate([p[1] for p in parts])[sel],
                                np.concatenate([p[2] for p in parts], axis=-1)[..., sel],
                                np.concatenate([p[3] for p in parts], axis=-1)[..., sel], npig[k][None, :])
        precision[..., k], recall[..., k] = p, r
    return precision, recall


def summarize(per_area: dict[str, tuple[np.ndarray, np.ndarray]],
              thresholds: np.ndarray = IOU_THRESHOLDS) -> dict[str, float]:
    """{area: (precision, recall)} -> the 10 numbers AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl,
    with AP20 / AP30 / AP40 after AP when the thresholds start that low (as detectron2)."""
    out = {}
    low = [(f"AP{round(t * 100)}", True, t, "all") for t in (0.2, 0.3, 0.4) if thresholds.min() <= t + 0.001]
    for name, is_ap, thr, area in SUMMARY[:1] + tuple(low) + SUMMARY[1:]:
        precision, recall = per_area[area]
        s = precision if is_ap else recall
        if thr is not None:
            s = s[np.flatnonzero(np.abs(thresholds - thr) < 1e-3)]
        valid = s[s > -1]
        out[name] = float(np.mean(valid)) if valid.size else -1.0
    return out


def match_images(cells: list[dict], area_ranges: list[tuple[float, float]], batch: int = 256) -> list:
    """``match_image`` for many images at once: the same result, cell for cell.

    Cells are padded to a common (D, G) in batches and matched together, one detection index at a
    time, so the Python loop runs 20 times per batch instead of D times per image. Padded ground
    truth is ignored with similarity 0 and box IoU 0 (never matched); padded detections are cut off.

    Args:
        cells: dicts with the keyword arguments of ``match_image`` (``sims`` (M, D, G), ``box_iou``,
            ``gt_ignore``, ``gt_area``, ``gt_crowd``, ``dt_area``, ``dt_score``).
        area_ranges: A (lo, hi) ranges.
    Returns:
        per cell, what ``match_image`` returns for it.
    """
    out: list = []
    for s in range(0, len(cells), batch):
        chunk = cells[s:s + batch]
        matched, ignored, ig, Ds, Gs = _match_batch(chunk, area_ranges)
        for i, c in enumerate(chunk):
            d, g = Ds[i], Gs[i]
            if d == 0 and g == 0:
                out.append(None)
                continue
            scores = np.asarray(c["dt_score"], dtype=np.float64)
            out.append([[ImageEval(matched[i, mi, ai, :, :d], ignored[i, mi, ai, :, :d], scores, ig[i, ai, :g])
                         for ai in range(len(area_ranges))] for mi in range(matched.shape[1])])
    return out


def _match_batch(cells: list[dict], area_ranges: list[tuple[float, float]],
                 thresholds: np.ndarray = IOU_THRESHOLDS) -> tuple[np.ndarray, ...]:
    """Cells padded to a common (D, G) and matched together -> matched, ignored (C, M, A, T, D),
    GT ignored (C, A, G), and the cells' D (C,) and G (C,)."""
    C = len(cells)
    if not C:
        raise ValueError("no cells to match")
    M = cells[0]["sims"].shape[0]
    Ds = [c["sims"].shape[1] for c in cells]
    Gs = [c["sims"].shape[2] for c in cells]
    D, G = max(max(Ds), 1), max(max(Gs), 1)
    A, T = len(area_ranges), len(thresholds)
    sims = np.zeros((C, M, D, G))
    box = np.zeros((C, D, G))
    gt_ig = np.ones((C, G), dtype=bool)
    gt_area = np.zeros((C, G))
    crowd = np.zeros((C, G), dtype=bool)
    dt_area = np.zeros((C, D))
    for i, c in enumerate(cells):
        d, g = Ds[i], Gs[i]
        sims[i, :, :d, :g] = c["sims"]
        box[i, :d, :g] = c["box_iou"]
        gt_ig[i, :g] = c["gt_ignore"]
        gt_area[i, :g] = c["gt_area"]
        crowd[i, :g] = c["gt_crowd"]
        dt_area[i, :d] = c["dt_area"]
    lo = np.array([r[0] for r in area_ranges], dtype=np.float64)[None, :, None]
    hi = np.array([r[1] for r in area_ranges], dtype=np.float64)[None, :, None]
    ig = gt_ig[:, None, :] | (gt_area[:, None, :] < lo) | (gt_area[:, None, :] > hi)  # (C, A, G)
    shape = (C, M, A, T)
    R = C * M * A * T
    ig_r = np.broadcast_to(ig[:, None, :, None, :], shape + (G,)).reshape(R, G)
    crowd_r = np.broadcast_to(crowd[:, None, None, None, :], shape + (G,)).reshape(R, G)
    thr = np.broadcast_to(np.minimum(thresholds, 1 - 1e-10)[None, None, None, :, None], shape + (1,)).reshape(R, 1)
    dtm = np.full((R, D), -1, dtype=np.int64)
    gtm = np.zeros((R, G), dtype=bool)
    dt_ig = np.zeros((R, D), dtype=bool)
    dt_ig[ig_r.all(axis=1)] = True
    per_cell = M * A * T  # rows of one cell
    low = float(thr.min())
    for d in range(D):
        # Only cells where detection d reaches the lowest threshold somewhere can match it.
        cs = np.flatnonzero((sims[:, :, d, :] >= low).any(axis=(1, 2)))
        if not len(cs):
            continue
        rows = (cs[:, None] * per_cell + np.arange(per_cell)).ravel()
        s = np.broadcast_to(sims[cs, :, d, None, None, :], (len(cs), M, A, T, G)).reshape(-1, G)
        ig_d = ig_r[rows]
        ok = (~gtm[rows] | crowd_r[rows]) & (s >= thr[rows]) & (s != 0.0)
        m = _last_argmax(s, ok & ~ig_d)
        none = m < 0
        m[none] = _last_argmax(s[none], ok[none] & ig_d[none])
        hit = np.flatnonzero(m >= 0)
        r, m = rows[hit], m[hit]
        dtm[r, d] = m
        dt_ig[r, d] = ig_r[r, m]
        gtm[r, m] = True
    dtm5, gtm5, ig5 = dtm.reshape(C, M, A, T, D), gtm.reshape(C, M, A, T, G), ig_r.reshape(C, M, A, T, G)
    dt_ig5 = dt_ig.reshape(C, M, A, T, D)
    for d in range(D):
        near = box[:, d] >= BOX_IGNORE_IOU  # (C, G)
        if not near.any():
            continue
        un = dtm5[:, :, :, -1, d] < 0  # (C, M, A)
        free = ~gtm5[:, :, :, -1, :] | crowd[:, None, None, :]  # (C, M, A, G)
        cand = (free & near[:, None, None, :] & un[..., None]).reshape(-1, G)
        val = np.where(cand, np.broadcast_to(box[:, None, None, d, :], (C, M, A, G)).reshape(-1, G), -np.inf)
        tie = cand & (val == val.max(axis=1, keepdims=True))
        rank = np.where(tie, ig5[:, :, :, -1, :].reshape(-1, G) * G + np.arange(G), -1)
        g = np.where(cand.any(axis=1), np.argmax(rank, axis=1), -1).reshape(C, M, A)
        ci, mi, ai = np.nonzero(g >= 0)
        gi = g[ci, mi, ai]
        flag = ig5[ci, mi, ai, -1, gi]
        dt_ig5[ci, mi, ai, :, d] = flag[:, None]
        ci, mi, ai, gi = ci[flag], mi[flag], ai[flag], gi[flag]
        dtm5[ci, mi, ai, -1, d] = gi
        gtm5[ci, mi, ai, -1, gi] = True
    out_of_range = (dt_area[:, None, :] < lo) | (dt_area[:, None, :] > hi)  # (C, A, D)
    matched = (dtm >= 0).reshape(C, M, A, T, D)
    ignored = dt_ig5 | (~matched & out_of_range[:, None, :, None, :])
    return matched, ignored, ig, np.array(Ds), np.array(Gs)
