"""Mask IoU of (detection, GT) pairs and the NumPy RLE reader, against dense pycocotools / scipy oracles."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from scipy.ndimage import zoom

from densepose.data.rle import encode_dp_masks, encode_mask
from densepose.evaluation.mask_iou import pair_ious
from densepose.evaluation.rle import check_sizes, decode_columns, ones_runs, rle_counts


def _random_masks(rng, n):
    for t in range(n):
        h, w = int(rng.integers(1, 70)), int(rng.integers(1, 70))
        kind = t % 4
        if kind == 0:
            m = rng.random((h, w)) < rng.random()
        elif kind == 1:
            m = np.zeros((h, w), bool)
        elif kind == 2:
            m = np.ones((h, w), bool)
        else:
            m = np.kron(rng.random((5, 5)) < 0.5, np.ones((h // 5 + 1, w // 5 + 1), bool))[:h, :w]
        yield m


def test_rle_counts_decode_like_pycocotools():
    rng = np.random.default_rng(0)
    masks = list(_random_masks(rng, 200))
    big = np.zeros((3000, 2500), bool)  # counts of several 5-bit groups, negative differences
    big[1000:2000, 5:2000] = True
    masks.append(big)
    strings = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))["counts"] for m in masks]
    counts, off = rle_counts(strings + [b""])
    assert check_sizes(counts, off, [m.size for m in masks] + [0]).all()
    owner, start, end = ones_runs(counts, off)
    for s, m in enumerate(masks):
        c = counts[off[s]:off[s + 1]]
        assert np.array_equal(decode_columns(c, m.shape[0], 0, m.shape[1]), m.T), s
        c0, c1 = m.shape[1] // 3, m.shape[1] - m.shape[1] // 4
        assert np.array_equal(decode_columns(c, m.shape[0], c0, c1), m.T[c0:c1]), s
        flat = np.zeros(m.size, bool)
        for a, b in zip(start[owner == s], end[owner == s]):
            flat[a:b] = True
        assert np.array_equal(flat, m.T.ravel()), s


@pytest.mark.parametrize("bad", [b" ", b"3h", b"0" * 9 + b"h" * 8 + b"0"])
def test_rle_counts_rejects_corrupt_strings(bad):
    with pytest.raises(ValueError):
        rle_counts([bad])


def _oracle_gt_mask(a, im_h, im_w):
    """The reference: full-image GT mask via pycocotools decode and scipy's zoom."""
    full = np.zeros((im_h, im_w), bool)
    if "dp_masks" in a:
        rles = [mask_utils.frPyObjects(m, *m["size"]) if isinstance(m["counts"], list)
                else {"size": m["size"], "counts": m["counts"].encode()} for m in a["dp_masks"] if m]
        if not rles:
            return full
        union = mask_utils.decode(mask_utils.merge(rles, intersect=False))
        x, y, w, h = (float(v) for v in a["bbox"])
        m = zoom(union.astype(np.float64), (max(h, 1) / union.shape[0], max(w, 1) / union.shape[1]),
                 order=1, prefilter=False) > 0.5
        _paste(full, m, x, y, w, h)
        return full
    seg = a.get("segmentation")
    if not seg:
        return full
    if isinstance(seg, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, im_h, im_w))
    elif isinstance(seg["counts"], list):
        rle = mask_utils.frPyObjects({"size": [im_h, im_w], "counts": seg["counts"]}, im_h, im_w)
    else:
        rle = {"size": seg["size"], "counts": seg["counts"].encode()}
    return mask_utils.decode(rle) > 0


def _paste(full, m, x, y, w, h):
    xi, yi = int(x), int(y)
    x0, y0 = max(xi, 0), max(yi, 0)
    x1 = min(int(x + w), full.shape[1], xi + m.shape[1])
    y1 = min(int(y + h), full.shape[0], yi + m.shape[0])
    if x1 > x0 and y1 > y0:
        full[y0:y1, x0:x1] = m[y0 - yi : y1 - yi, x0 - xi : x1 - xi]


def _uncompressed(m):
    flat = m.ravel(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(np.r_[0, flat, 1 - flat[-1]]) != 0)
    return {"size": list(m.shape), "counts": np.diff(np.r_[0, change]).tolist()}


def _awkward_set(rng, im_h=90, im_w=120):
    """GTs of every kind (dp_masks of all sorts, segmentations, crowd) and detections around them."""
    gts = []
    for t in range(16):
        w, h = float(rng.uniform(0.4, 80)), float(rng.uniform(0.4, 70))
        x, y = float(rng.uniform(-20, im_w - 5)), float(rng.uniform(-20, im_h - 5))
        a = {"id": t, "bbox": [x, y, w, h], "iscrowd": int(t % 7 == 6)}
        kind = t % 5
        if kind in (0, 1, 2):
            labels = np.kron(rng.integers(0, 15, (8, 8)), np.ones((32, 32), int)).astype(np.uint8)
            if kind == 1:
                labels = np.where(rng.random((256, 256)) < 0.3, rng.integers(0, 15, (256, 256)), labels).astype(np.uint8)
            dp = encode_dp_masks(labels)
            if kind == 2:
                dp = [_uncompressed(mask_utils.decode({"size": m["size"], "counts": m["counts"].encode()})) if m else []
                      for m in dp]
            if t == 10:
                dp = [[] for _ in dp]  # no part at all
            a["dp_masks"] = dp
        else:
            full = np.zeros((im_h, im_w), bool)
            xi, yi = max(int(x), 0), max(int(y), 0)
            rows, cols = slice(yi, yi + int(h) + 1), slice(xi, xi + int(w) + 1)
            full[rows, cols] = rng.random((im_h, im_w))[rows, cols] < 0.8
            if kind == 3:
                a["segmentation"] = encode_mask(full)
            elif t % 2:
                a["segmentation"] = _uncompressed(full)
            else:
                a["segmentation"] = [[x, y, x + w, y, x + w / 2, y + h]]
        gts.append(a)
    gts.append({"id": 99, "bbox": [3.0, 4.0, 20.0, 30.0]})  # nothing to build a mask from
    dets = []
    for _ in range(12):
        w, h = float(rng.uniform(0.3, 90)), float(rng.uniform(0.3, 80))
        x, y = float(rng.uniform(-25, im_w)), float(rng.uniform(-25, im_h))
        hh, ww = max(int(h), 1), max(int(w), 1)
        iuv = np.zeros((3, hh, ww), np.uint8)
        iuv[0] = rng.integers(0, 25, (hh, ww)) * (rng.random((hh, ww)) < 0.7)
        dets.append(([x, y, w, h], iuv))
    for a in gts[:6]:  # detections right on GTs too
        x, y, w, h = a["bbox"]
        iuv = np.ones((3, max(int(h), 1), max(int(w), 1)), np.uint8)
        dets.append(([x, y, w, h], iuv))
    return gts, dets


def test_pair_ious_match_dense_oracle():
    rng = np.random.default_rng(3)
    im_h, im_w = 90, 120
    for _ in range(3):
        gts, dets = _awkward_set(rng, im_h, im_w)
        K, G = len(dets), len(gts)
        pair_det, pair_gt = np.repeat(np.arange(K), G), np.tile(np.arange(G), K)
        got = pair_ious(gts, np.tile([im_h, im_w], (G, 1)), str,
                        np.array([d[0] for d in dets]), np.tile([im_h, im_w], (K, 1)), lambda k: dets[k][1],
                        pair_det, pair_gt)
        gm = [_oracle_gt_mask(a, im_h, im_w) for a in gts]
        for p, (k, j) in enumerate(zip(pair_det, pair_gt)):
            dm = np.zeros((im_h, im_w), bool)
            (x, y, w, h), iuv = dets[k]
            _paste(dm, iuv[0] > 0, x, y, w, h)
            inter = int(np.count_nonzero(dm & gm[j]))
            da, ga = int(dm.sum()), int(gm[j].sum())
            union = da if gts[j].get("iscrowd") else da + ga - inter
            want = inter / union if da and ga and union else 0.0
            assert got[p] == want, (k, j, got[p], want)
        assert (got > 0).sum() > 10  # the set has overlapping pairs


def test_corrupt_masks_name_the_annotation():
    from densepose.errors import UserError

    gt = {"id": 7, "bbox": [0.0, 0.0, 10.0, 10.0], "segmentation": {"size": [20, 20], "counts": "3h"}}
    det = ([0.0, 0.0, 10.0, 10.0], np.ones((3, 10, 10), np.uint8))
    args = (np.array([[20, 20]]), lambda j: "gt 7", np.array([det[0]]), np.array([[20, 20]]), lambda k: det[1],
            np.array([0]), np.array([0]))
    with pytest.raises(UserError, match="gt 7: segmentation does not decode"):
        pair_ious([gt], *args)
    gt["segmentation"] = {"size": [30, 20], "counts": "0"}
    with pytest.raises(UserError, match="gt 7: segmentation size"):
        pair_ious([gt], *args)
    gt = {"id": 7, "bbox": [0.0, 0.0, 10.0, 10.0], "dp_masks": [{"size": [256, 256], "counts": "3h"}]}
    with pytest.raises(UserError, match="gt 7: dp_masks do not decode"):
        pair_ious([gt], *args)


def test_pair_ious_floor_only_zeroes_values_below_it():
    rng = np.random.default_rng(5)
    im_h, im_w = 90, 120
    gts, dets = _awkward_set(rng, im_h, im_w)
    K, G = len(dets), len(gts)
    pair_det, pair_gt = np.repeat(np.arange(K), G), np.tile(np.arange(G), K)
    args = (gts, np.tile([im_h, im_w], (G, 1)), str, np.array([d[0] for d in dets]),
            np.tile([im_h, im_w], (K, 1)), lambda k: dets[k][1], pair_det, pair_gt)
    exact, floored = pair_ious(*args), pair_ious(*args, floor=0.2)
    same = floored == exact
    assert np.all(same | ((floored == 0) & (exact < 0.2)))
    assert np.all(same[exact >= 0.2]) and (~same).any()  # some pairs skipped, none above the floor
