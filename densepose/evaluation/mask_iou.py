"""Mask IoU of many (detection, ground truth) pairs, as the official DensePose evaluator computes it.

- Detection mask: its foreground (I > 0) pasted at the integer box, clipped to the image.
- GT mask: the union of the 14 ``dp_masks`` zoomed to the box (``zoom(order=1) > 0.5``, see
  ``masks.zoom_mask``) and pasted likewise; without ``dp_masks``, the COCO segmentation.
- IoU = |D & G| / |D | G|; a crowd GT divides by |D| instead.

Work is per GT and per detection, not per pair: every mask is built once and only if its region
meets one of the other side (a pair whose regions do not meet has IoU 0); the segmentations of a
batch are read from their RLE strings in one go (``rle``), and only the columns of a
segmentation's foreground are written. A pair then costs one AND over the overlap of two crops.
"""
from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from densepose.errors import UserError
from densepose.evaluation.masks import zoom_masks, zoom_shape
from densepose.evaluation.rle import check_sizes, decode_columns, ones_runs, rle_counts

#: A mask crop: (y0, x0, bool (h, w)) with its top-left corner in image pixels.
_EMPTY = (0, 0, np.zeros((0, 0), dtype=bool))


def paste_regions(boxes: np.ndarray, mask_hw: np.ndarray, im_hw: np.ndarray) -> np.ndarray:
    """(N, 4) int64 (y0, x0, y1, x1) that an (h, w) mask pasted at each xywh box covers in its image.

    The reference pastes at ``int(x), int(y)`` and keeps ``int(x + w)`` columns at most, clipped to
    the image. Args: boxes (N, 4) float xywh; mask_hw (N, 2) mask sizes; im_hw (N, 2) image sizes.
    An empty region has y1 <= y0 or x1 <= x0.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    xi, yi = np.trunc(boxes[:, 0]).astype(np.int64), np.trunc(boxes[:, 1]).astype(np.int64)
    x1 = np.minimum(np.minimum(np.trunc(boxes[:, 0] + boxes[:, 2]).astype(np.int64), im_hw[:, 1]), xi + mask_hw[:, 1])
    y1 = np.minimum(np.minimum(np.trunc(boxes[:, 1] + boxes[:, 3]).astype(np.int64), im_hw[:, 0]), yi + mask_hw[:, 0])
    return np.stack([np.maximum(yi, 0), np.maximum(xi, 0), y1, x1], axis=1)


def int_boxes(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) float xywh -> (N, 4) int64 (y0, x0, y1, x1) = int(y), int(x), int(y + h), int(x + w)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.trunc(np.stack([boxes[:, 1], boxes[:, 0], boxes[:, 1] + boxes[:, 3], boxes[:, 0] + boxes[:, 2]],
                             axis=1)).astype(np.int64)


def pair_ious(gts: list[dict], gt_im_hw: np.ndarray, gt_where, det_boxes: np.ndarray,
              det_im_hw: np.ndarray, det_iuv, pair_det: np.ndarray, pair_gt: np.ndarray,
              floor: float = 0.0) -> np.ndarray:
    """Mask IoU (N,) of N (detection, GT) pairs.

    Args:
        gts: G annotations; gt_im_hw (G, 2) their image sizes; gt_where(j) -> GT j's name for errors.
        det_boxes (K, 4) xywh, det_im_hw (K, 2); det_iuv(k) -> uint8 (3, h, w) IUV of detection k.
        pair_det (N,) in [0, K), pair_gt (N,) in [0, G).
        floor: a pair whose IoU is surely below ``floor`` gets 0 without counting its pixels
            (bound: the intersection is at most the smaller area and the overlap of the two
            regions). 0: every value exact.
    """
    K, G = len(det_boxes), len(gts)
    out = np.zeros(len(pair_det))
    if not len(pair_det):
        return out
    det_hw = np.maximum(np.trunc(det_boxes[:, [3, 2]]), 1).astype(np.int64)  # the IUV array size
    det_reg = paste_regions(det_boxes, det_hw, det_im_hw)
    gt_reg, seg = _gt_extents(gts, gt_im_hw)
    dr, gr = det_reg[pair_det], gt_reg[pair_gt]
    meet = ((dr[:, 2] > dr[:, 0]) & (dr[:, 3] > dr[:, 1])
            & (dr[:, 0] < gr[:, 2]) & (gr[:, 0] < dr[:, 2]) & (dr[:, 1] < gr[:, 3]) & (gr[:, 1] < dr[:, 3]))
    if not meet.any():
        return out
    need_det = np.zeros(K, dtype=bool)
    need_det[pair_det[meet]] = True
    det_masks = [_EMPTY] * K
    origin = np.trunc(det_boxes[:, [1, 0]]).astype(np.int64)
    for k, (y0, x0, y1, x1), (yi, xi) in zip(np.flatnonzero(need_det).tolist(), det_reg[need_det].tolist(),
                                            origin[need_det].tolist()):
        det_masks[k] = (y0, x0, det_iuv(k)[0, y0 - yi : y1 - yi, x0 - xi : x1 - xi])  # part index I: > 0 is foreground
    det_area = np.array([np.count_nonzero(m[2]) for m in det_masks], dtype=np.int64)
    # dp_masks GTs are zoomed (their area needs it); a segmentation's area comes from its runs.
    need_gt = np.zeros(G, dtype=bool)
    need_gt[pair_gt[meet]] = True
    is_seg = np.array(["dp_masks" not in a for a in gts], dtype=bool)
    gt_masks, gt_area = _gt_masks(gts, gt_im_hw, gt_where, need_gt & ~is_seg)
    for j, parsed in seg.items():
        gt_area[j] = parsed[3]
    for j, m in enumerate(gt_masks):
        if not is_seg[j] and need_gt[j]:
            gt_reg[j] = (m[0], m[1], m[0] + m[2].shape[0], m[1] + m[2].shape[1])
    crowd = np.array([bool(a.get("iscrowd", 0)) for a in gts], dtype=bool)
    idx = np.flatnonzero(meet & (det_area[pair_det] > 0) & (gt_area[pair_gt] > 0))
    unreadable = np.zeros(G, dtype=bool)
    unreadable[[j for j in np.flatnonzero(is_seg & need_gt) if j not in seg and gts[j].get("segmentation")]] = True
    if floor > 0:
        da, ga = det_area[pair_det[idx]], gt_area[pair_gt[idx]]
        lo = np.maximum(det_reg[pair_det[idx], :2], gt_reg[pair_gt[idx], :2])
        hi = np.minimum(det_reg[pair_det[idx], 2:], gt_reg[pair_gt[idx], 2:])
        most = np.minimum(np.minimum(da, ga), np.prod(np.maximum(hi - lo, 0), axis=1))
        bound = np.where(crowd[pair_gt[idx]], most / da, most / (da + ga - most))
        idx = idx[bound >= floor]
    need = np.zeros(G, dtype=bool)
    need[pair_gt[idx]] = True
    need[unreadable & need_gt] = True  # building it reports the error
    for j in np.flatnonzero(need & is_seg):
        gt_masks[j] = _seg_mask(gts[j], int(gt_im_hw[j, 0]), int(gt_im_hw[j, 1]), gt_where(j), seg.get(int(j)), gt_reg[j])
    inter = _intersections(det_masks, gt_masks, pair_det[idx], pair_gt[idx])
    da, ga = det_area[pair_det[idx]], gt_area[pair_gt[idx]]
    union = np.where(crowd[pair_gt[idx]], da, da + ga - inter)
    out[idx] = inter / union  # union >= da > 0
    return out


def _intersections(a: list, b: list, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """(P,) pixels set in both crops a[ia[p]] and b[ib[p]], crops being (y0, x0, mask (h, w))."""
    ra = np.array([(y, x, y + m.shape[0], x + m.shape[1]) for y, x, m in a], dtype=np.int64).reshape(-1, 4)
    rb = np.array([(y, x, y + m.shape[0], x + m.shape[1]) for y, x, m in b], dtype=np.int64).reshape(-1, 4)
    lo = np.maximum(ra[ia, :2], rb[ib, :2])
    hi = np.minimum(ra[ia, 2:], rb[ib, 2:])
    out = np.zeros(len(ia), dtype=np.int64)
    ok = np.flatnonzero((hi > lo).all(axis=1))
    rows = zip(ok.tolist(), ia[ok].tolist(), ib[ok].tolist(), lo[ok].tolist(), hi[ok].tolist())
    for p, i, j, (y0, x0), (y1, x1) in rows:
        ay, ax, am = a[i]
        by, bx, bm = b[j]
        out[p] = np.count_nonzero(np.logical_and(am[y0 - ay : y1 - ay, x0 - ax : x1 - ax],
                                                 bm[y0 - by : y1 - by, x0 - bx : x1 - bx]))
    return out


# ------------------------------------------------------------------------------ GT regions
def _gt_extents(gts: list[dict], im_hw: np.ndarray) -> tuple[np.ndarray, dict]:
    """Where each GT mask can be: (G, 4) (y0, x0, y1, x1), and the parsed segmentations.

    A ``dp_masks`` GT lies inside its integer box. A segmentation's foreground extent is read
    from its runs; one that cannot be read (corrupt, wrong size) gets the whole image, so that
    building it reports the error if a detection is there. No mask: an empty region.
    Returns also {GT index: (counts (n,), height, width, area)} of the readable segmentations.
    """
    G = len(gts)
    reg = np.zeros((G, 4), dtype=np.int64)
    dp = np.array(["dp_masks" in a for a in gts], dtype=bool)
    if dp.any():
        reg[dp] = int_boxes(np.array([[float(v) for v in gts[j]["bbox"]] for j in np.flatnonzero(dp)]))
    strings, owners = [], []
    for j in np.flatnonzero(~dp):
        rle = _seg_rle(gts[j], int(im_hw[j, 0]), int(im_hw[j, 1]))
        if rle is None:
            continue
        if rle is False:  # present but unreadable: let building it raise
            reg[j] = (0, 0, im_hw[j, 0], im_hw[j, 1])
            continue
        strings.append(rle)
        owners.append(j)
    seg = {}
    if owners:
        owners = np.array(owners)
        H = im_hw[owners, 0]
        try:
            counts, off = rle_counts(strings)
            ok = check_sizes(counts, off, H * im_hw[owners, 1])
        except ValueError:  # one bad string: read them one by one to find it
            counts, off, ok = _counts_one_by_one(strings, H * im_hw[owners, 1])
        for s in np.flatnonzero(~ok):
            reg[owners[s]] = (0, 0, im_hw[owners[s], 0], im_hw[owners[s], 1])
        owner, start, end = ones_runs(counts, off)
        keep = ok[owner]
        owner, start, end = owner[keep], start[keep], end[keep]
        h = H[owner]
        ca, cb = start // h, (end - 1) // h
        ra = np.where(ca == cb, start % h, 0)  # a run over several columns covers every row
        rb = np.where(ca == cb, (end - 1) % h, h - 1)
        if len(owner):
            first = np.flatnonzero(np.concatenate([[True], owner[1:] != owner[:-1]]))
            j = owners[owner[first]]
            reg[j] = np.stack([np.minimum.reduceat(ra, first), np.minimum.reduceat(ca, first),
                               np.maximum.reduceat(rb, first) + 1, np.maximum.reduceat(cb, first) + 1], axis=1)
        area = np.bincount(owner, weights=end - start, minlength=len(owners)).astype(np.int64)
        for s in np.flatnonzero(ok):
            seg[int(owners[s])] = (counts[off[s]:off[s + 1]], int(H[s]), int(im_hw[owners[s], 1]), int(area[s]))
    return reg, seg


def _counts_one_by_one(strings: list[bytes], sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts, ok = [], np.zeros(len(strings), dtype=bool)
    for s, string in enumerate(strings):
        try:
            c, o = rle_counts([string])
            ok[s] = bool(check_sizes(c, o, sizes[s : s + 1])[0])
        except ValueError:
            c = np.zeros(0, dtype=np.int64)
        parts.append(c if ok[s] else np.zeros(0, dtype=np.int64))
    off = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64), off, ok


def _seg_rle(a: dict, im_h: int, im_w: int):
    """A GT's segmentation as a compressed RLE string of the image size; None if it has none,
    False if it has one that is not readable as such (``_seg_mask`` then raises the error)."""
    seg = a.get("segmentation")
    if not seg or not isinstance(seg, (list, dict)):
        return None
    try:
        if isinstance(seg, list):
            return mask_utils.merge(mask_utils.frPyObjects(seg, im_h, im_w))["counts"]
        if isinstance(seg.get("counts"), list):
            return mask_utils.frPyObjects({"size": [im_h, im_w], "counts": seg["counts"]}, im_h, im_w)["counts"]
        if [int(v) for v in seg.get("size", ())] == [im_h, im_w]:
            counts = seg["counts"]
            return counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    except Exception:  # pycocotools raises bare exceptions on bad input; reported when built
        return False
    return False


# ------------------------------------------------------------------------------ GT masks
def _gt_masks(gts: list[dict], im_hw: np.ndarray, where, need: np.ndarray) -> tuple[list, np.ndarray]:
    """Crops (y0, x0, bool mask) of the ``dp_masks`` GTs flagged in ``need`` (G,), empty for the
    others, and their areas (G,).

    The unions are written and zoomed some 16 at a time (about 1 MB), so that each step finds
    the previous one's output in cache.
    """
    out, area = [_EMPTY] * len(gts), np.zeros(len(gts), dtype=np.int64)
    dp = [j for j in np.flatnonzero(need) if "dp_masks" in gts[j]]
    counts, off, in_hw, has = _dp_unions([gts[j]["dp_masks"] for j in dp], lambda i: where(dp[i]))
    dp = [j for j, h in zip(dp, has) if h]  # GTs without any part keep an empty mask
    if not dp:
        return out, area
    box = np.array([[float(v) for v in gts[j]["bbox"]] for j in dp])
    scale = np.maximum(box[:, [3, 2]], 1.0) / in_hw  # scipy's zoom factors
    out_hw = np.array([zoom_shape(tuple(hw), tuple(sc)) for hw, sc in zip(in_hw.tolist(), scale.tolist())])
    reg = paste_regions(box, out_hw, im_hw[dp])
    origin = np.trunc(box[:, [1, 0]]).astype(np.int64)
    size = np.cumsum(in_hw[:, 0] * in_hw[:, 1])
    c0 = 0
    while c0 < len(dp):
        c1 = max(int(np.searchsorted(size, size[c0] + (1 << 20), side="left")), c0 + 1)
        c1 = min(c1, len(dp))
        n = np.diff(off[c0 : c1 + 1])
        values = (np.arange(off[c0], off[c1]) - np.repeat(off[c0:c1], n)) % 2  # runs alternate 0, 1
        flat = np.repeat(values.astype(np.uint8), counts[off[c0] : off[c1]])
        in_start = np.concatenate([[0], np.cumsum(in_hw[c0:c1, 0] * in_hw[c0:c1, 1])[:-1]]).astype(np.int64)
        buf, start = zoom_masks(flat, in_start, in_hw[c0:c1], out_hw[c0:c1])  # == zoom(order=1) > 0.5
        for k in range(c0, c1):
            y0, x0, y1, x1 = reg[k].tolist()
            if y1 > y0 and x1 > x0:
                yi, xi = origin[k].tolist()
                m = buf[start[k - c0] : start[k - c0 + 1]].reshape(out_hw[k])[y0 - yi : y1 - yi, x0 - xi : x1 - xi]
                out[dp[k]], area[dp[k]] = (y0, x0, m), np.count_nonzero(m)
        c0 = c1
    return out, area


def _seg_mask(a: dict, im_h: int, im_w: int, where: str, parsed, region) -> tuple:
    """Crop of a segmentation over its foreground ``region`` (y0, x0, y1, x1), written from its
    runs (only those columns); raises if it was unreadable."""
    if parsed is None:
        _raise_bad_segmentation(a, im_h, im_w, where)
    y0, x0, y1, x1 = (int(v) for v in region)
    if y1 <= y0 or x1 <= x0:
        return _EMPTY
    cols = decode_columns(parsed[0], parsed[1], x0, x1)  # (columns, h): the mask transposed
    return y0, x0, np.ascontiguousarray(cols[:, y0:y1].T).view(bool)


def _raise_bad_segmentation(a: dict, im_h: int, im_w: int, where: str) -> None:
    """The error the reference-style full decode gives for an unreadable segmentation."""
    from densepose.data.rle import decode_mask

    seg = a["segmentation"]
    try:
        if isinstance(seg, dict) and isinstance(seg.get("counts"), list):
            seg = {"size": [im_h, im_w], "counts": seg["counts"]}
        size = [int(v) for v in seg.get("size", ())] if isinstance(seg, dict) else [im_h, im_w]
        if size != [im_h, im_w]:
            raise UserError(f"{where}: segmentation size {size} differs from the image size {[im_h, im_w]}")
        decode_mask(seg, im_h, im_w)
    except UserError:
        raise
    except Exception as exc:  # pycocotools raises bare exceptions for corrupt RLE
        raise UserError(f"{where}: segmentation does not decode ({exc.__class__.__name__}: {exc})") from None
    raise UserError(f"{where}: segmentation does not decode (corrupt RLE counts)")


def _dp_unions(dp_masks_list: list[list], where) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """The unions of the ``dp_masks`` of n GTs as run lengths (``where(i)``: GT i's name for errors).

    pycocotools merges the parts of each GT (in C); the merged strings of all GTs are then read at once.
    Returns counts, offsets (k + 1,) (``rle.rle_counts``: union k column-major), in_hw (k, 2), and
    has (n,) bool: which GTs have a part (the k unions, in order).
    """
    strings, hw, has = [], [], []
    for i, dp_masks in enumerate(dp_masks_list):
        rles = [m for m in dp_masks if m]  # pycocotools takes str or bytes counts as they are
        has.append(bool(rles))
        if not rles:
            continue
        try:
            if any(isinstance(r["counts"], list) for r in rles):
                rles = [mask_utils.frPyObjects(r, *r["size"]) if isinstance(r["counts"], list) else r for r in rles]
            merged = mask_utils.merge(rles, intersect=False)
        except Exception as exc:  # pycocotools raises bare exceptions for corrupt RLE
            raise UserError(f"{where(i)}: dp_masks do not decode ({exc.__class__.__name__}: {exc})") from None
        strings.append(merged["counts"])
        hw.append((int(merged["size"][0]), int(merged["size"][1])))
    hw = np.array(hw, dtype=np.int64).reshape(-1, 2)
    try:
        counts, off = rle_counts(strings)
        ok = check_sizes(counts, off, hw[:, 0] * hw[:, 1])
    except ValueError:
        counts, off, ok = _counts_one_by_one(strings, hw[:, 0] * hw[:, 1])
    if not ok.all():
        i = np.flatnonzero(has)[int(np.flatnonzero(~ok)[0])]
        raise UserError(f"{where(int(i))}: dp_masks do not decode (corrupt RLE counts)")
    return counts, off, hw, has
