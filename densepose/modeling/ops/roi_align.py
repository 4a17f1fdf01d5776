"""RoIAlign (Mask R-CNN) in plain torch, vectorised; and the FPN multi-level pooler.

Semantics follow the reference CPU kernel of detectron2/torchvision exactly (checked against a
naive loop in tests/test_modeling_ops.py): each output bin averages ``sampling_ratio**2`` regularly
spaced bilinear samples; a sample more than one pixel outside the map contributes 0, a sample in
[-1, 0) is clamped to 0, and ``aligned=True`` shifts the box by -0.5 px (pixel-centre model,
"ROIAlignV2"). Adaptive sampling (``sampling_ratio=0``) is not supported: it makes the number of
samples depend on the box, which defeats vectorisation; every reference config uses 2.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densepose.modeling.ops.groups import slots_in_groups


#: Rows gathered per chunk (x channels) in the gather path; bounds its memory.
_CHUNK_ELEMS = 1 << 24


def _axis_weights(start: Tensor, bin_size: Tensor, out: int, sr: int, size: int):
    """Sample positions along one axis -> (low idx, high idx, low w, high w, valid), each (K, out*sr)."""
    grid = (torch.arange(out * sr, device=start.device, dtype=start.dtype) + 0.5) / sr  # in bins
    pos = start[:, None] + grid[None, :] * bin_size[:, None]
    valid = (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    lo = pos.floor().long()
    at_end = lo >= size - 1
    lo = torch.where(at_end, torch.full_like(lo, size - 1), lo)
    hi = torch.where(at_end, lo, lo + 1)
    pos = torch.where(at_end, lo.to(pos.dtype), pos)
    w_hi = pos - lo.to(pos.dtype)
    return lo, hi, 1.0 - w_hi, w_hi, valid


def _axis_taps(start: Tensor, bin_size: Tensor, out: int, sr: int, size: int) -> tuple[Tensor, Tensor]:
    """The map positions each output bin reads along one axis, and their weights: (K, out, 2 * sr) each.

    A bin's ``sr`` samples each read two neighbours (low, high); a sample outside the map weighs 0,
    and each weight carries the bin's 1 / sr share of the mean.
    """
    lo, hi, w_lo, w_hi, valid = _axis_weights(start, bin_size, out, sr, size)
    k = start.shape[0]
    index = torch.stack([lo, hi], dim=-1).view(k, out, 2 * sr)
    weight = (torch.stack([w_lo, w_hi], dim=-1) * (valid[..., None] / sr)).view(k, out, 2 * sr)
    return index, weight


def _bin_taps(rois: Tensor, ph: int, pw: int, x0: Tensor, y0: Tensor, rw: Tensor, rh: Tensor, sr: int, h: int,
              w: int) -> tuple[Tensor, Tensor]:
    """The channels-last rows (row = (b * H + y) * W + x) each output bin reads, and their weights:
    (K, ph * pw, (2 sr)**2) each, the ``sr * sr`` samples' four bilinear neighbours; a bin is the
    weighted sum of its rows."""
    k = rois.shape[0]
    y_index, y_weight = _axis_taps(y0, rh / ph, ph, sr, h)  # (K, ph, 2 sr)
    x_index, x_weight = _axis_taps(x0, rw / pw, pw, sr, w)  # (K, pw, 2 sr)
    first_row = rois[:, 0].long() * (h * w)  # (K,) the first row of each RoI's image
    index = (first_row[:, None, None, None, None] + (y_index * w)[:, :, None, :, None]
             + x_index[:, None, :, None, :])  # (K, ph, pw, 2 sr, 2 sr)
    weight = y_weight[:, :, None, :, None] * x_weight[:, None, :, None, :]
    return index.reshape(k, ph * pw, -1), weight.reshape(k, ph * pw, -1)


def _roi_align_bags(features: Tensor, rois: Tensor, ph: int, pw: int, x0: Tensor, y0: Tensor, rw: Tensor,
                    rh: Tensor, sr: int) -> Tensor:
    """Inference path: every bin of every RoI in one ``F.embedding_bag`` over the map's channels-last
    rows (`_bin_taps`). No sample grid is built and no samples are averaged afterwards: on the CPU
    it runs in a fifth to a tenth of ``grid_sample``'s time. Same result as the other two paths."""
    n, c, h, w = features.shape
    index, weight = _bin_taps(rois, ph, pw, x0, y0, rw, rh, sr, h, w)
    rows = features.permute(0, 2, 3, 1).reshape(n * h * w, c)  # a view when ``features`` is channels-last
    taps = index.shape[-1]
    bins = F.embedding_bag(index.reshape(-1, taps), rows, per_sample_weights=weight.reshape(-1, taps).to(rows.dtype),
                           mode="sum")  # (K * ph * pw, C)
    return bins.view(-1, ph, pw, c).permute(0, 3, 1, 2).contiguous()


def _roi_align_gather(features: Tensor, rois: Tensor, ph: int, pw: int, x0: Tensor, y0: Tensor, rw: Tensor,
                      rh: Tensor, sr: int) -> Tensor:
    """Deterministic path: the rows of `_bin_taps` gathered and weighed explicitly, in chunks of RoIs
    (backward = index_put with accumulate, which has a deterministic CUDA kernel, unlike
    grid_sample's backward). Same result as the other two paths."""
    n, c, h, w = features.shape
    k = rois.shape[0]
    index, weight = _bin_taps(rois, ph, pw, x0, y0, rw, rh, sr, h, w)
    rows = features.permute(0, 2, 3, 1).reshape(n * h * w, c)
    step = max(1, _CHUNK_ELEMS // max(index[0].numel() * c, 1))
    out = []
    for s in range(0, k, step):
        taps = rows[index[s:s + step].reshape(-1)].view(*index[s:s + step].shape, c)  # (k, ph * pw, taps, C)
        out.append((taps * weight[s:s + step, :, :, None].to(rows.dtype)).sum(dim=2))
    return torch.cat(out, dim=0).view(k, ph, pw, c).permute(0, 3, 1, 2).contiguous()


def _sample_positions(start: Tensor, bin_size: Tensor, out: int, sr: int) -> Tensor:
    """Sample coordinates along one axis (K, out * sr): ``sr`` evenly spaced samples per bin."""
    grid = (torch.arange(out * sr, device=start.device, dtype=start.dtype) + 0.5) / sr  # in bins
    return start[:, None] + grid[None, :] * bin_size[:, None]


def _mean_of_bins(samples: Tensor, sr: int) -> Tensor:
    """(N, C, H, W) -> (N, C, H / sr, W / sr): the mean of each sr x sr block, as ``F.avg_pool2d(x,
    sr)`` but summed from strided views, which the CPU does in a third of avg_pool2d's time on these
    tall, narrow sample maps."""
    rows = sum(samples[:, :, i::sr] for i in range(1, sr)) + samples[:, :, 0::sr]
    return (sum(rows[..., j::sr] for j in range(1, sr)) + rows[..., 0::sr]) * (1.0 / (sr * sr))


def roi_align(
    features: Tensor,
    rois: Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int = 2,
    aligned: bool = True,
) -> Tensor:
    """Pool ``features`` (N, C, H, W) inside ``rois`` (K, 5) = [batch index, x0, y0, x1, y1].

    ``rois`` are in image pixels; ``spatial_scale`` = 1 / stride. Returns (K, C, ph, pw).

    Three paths give the same result, never looping over images or boxes:

    * without a gradient to features (inference), each bin is one weighted sum of feature rows
      (``F.embedding_bag``, `_roi_align_bags`), the fastest on the CPU;
    * in training, all samples of all RoIs of an image form one sampling grid for ``F.grid_sample``
      (bilinear, ``align_corners=True`` so grid units are pixel indices, ``border`` padding =
      RoIAlign's clamping of samples in [-1, 0) and (H-1, H]); samples further out than one pixel
      are zeroed with a mask, then each bin averages its ``sr x sr`` samples. One call serves every
      image of the batch (each image's RoIs padded to the largest count);
    * in training under ``torch.use_deterministic_algorithms`` on CUDA (grid_sample's backward is
      not deterministic there), explicit gathers (`_roi_align_gather`).
    """
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    n, c, h, w = features.shape
    k = rois.shape[0]
    if k == 0:
        # Keep the result attached to the graph so layers feeding ``features`` still get a (zero)
        # gradient: DDP requires every parameter to take part in every step.
        return features.new_zeros((0, c, ph, pw)) + features.flatten()[:1].sum() * 0
    sr = int(sampling_ratio)
    if sr <= 0:
        raise ValueError("roi_align: sampling_ratio must be > 0 (adaptive sampling is not supported)")
    # Coordinates and sampling in float32 at least: bf16/fp16 (autocast) box coordinates would be
    # off by pixels.
    out_dtype = features.dtype
    if features.dtype in (torch.float16, torch.bfloat16):
        features = features.float()
    rois = rois.to(features.dtype)
    off = 0.5 if aligned else 0.0
    x0 = rois[:, 1] * spatial_scale - off
    y0 = rois[:, 2] * spatial_scale - off
    rw = rois[:, 3] * spatial_scale - off - x0
    rh = rois[:, 4] * spatial_scale - off - y0
    if not aligned:  # legacy: force boxes to be at least one pixel
        rw, rh = rw.clamp(min=1.0), rh.clamp(min=1.0)
    if not (features.requires_grad and torch.is_grad_enabled()):
        return _roi_align_bags(features, rois, ph, pw, x0, y0, rw, rh, sr).to(out_dtype)
    if features.is_cuda and torch.are_deterministic_algorithms_enabled():
        return _roi_align_gather(features, rois, ph, pw, x0, y0, rw, rh, sr).to(out_dtype)
    ys = _sample_positions(y0, rh / ph, ph, sr)  # (K, sy)
    xs = _sample_positions(x0, rw / pw, pw, sr)  # (K, sx)
    valid = ((ys >= -1.0) & (ys <= h))[:, :, None] & ((xs >= -1.0) & (xs <= w))[:, None, :]  # (K, sy, sx)
    # Pixel index -> [-1, 1] with align_corners=True; a size-1 axis maps everything to index 0.
    gy = ys * (2.0 / (h - 1)) - 1.0 if h > 1 else torch.zeros_like(ys)
    gx = xs * (2.0 / (w - 1)) - 1.0 if w > 1 else torch.zeros_like(xs)
    sy, sx = ys.shape[1], xs.shape[1]
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)  # (K, sy, sx, 2)
    # All RoIs of all images in one grid_sample call: image b's grid holds its RoIs in slots
    # 0..count_b-1, padded to the largest count (padding slots are masked and never read back).
    if n == 1:
        g, v, kmax = grid[None], valid[None], k
    else:
        bidx = rois[:, 0].long()
        counts = torch.bincount(bidx, minlength=n)
        kmax = int(counts.max())
        slot = slots_in_groups(bidx, counts)
        g = grid.new_zeros((n, kmax, sy, sx, 2))
        g[bidx, slot] = grid
        v = valid.new_zeros((n, kmax, sy, sx))
        v[bidx, slot] = valid
    s = F.grid_sample(features, g.view(n, kmax * sy, sx, 2), mode="bilinear", padding_mode="border",
                      align_corners=True)  # (N, C, kmax*sy, sx)
    # Zero the samples far outside, then average each bin's sr x sr samples: the rows of one RoI
    # are consecutive and sy = ph * sr, so sr x sr pooling never mixes two RoIs.
    if not bool(valid.all()):  # boxes inside the map (nearly all) skip a pass over every sample
        s = s * v.view(n, 1, kmax * sy, sx).to(s.dtype)
    s = _mean_of_bins(s, sr)  # (N, C, kmax*ph, pw)
    s = s.view(n, c, kmax, ph, pw).transpose(1, 2)  # (N, kmax, C, ph, pw)
    out = s[0] if n == 1 else s[bidx, slot]  # (K, C, ph, pw)
    return out.contiguous().to(out_dtype)


def boxes_to_rois(boxes: list[Tensor]) -> Tensor:
    """Per-image boxes [(K_i, 4)] -> (sum K_i, 5) rois with the batch index in column 0."""
    rois = [torch.cat([b.new_full((b.shape[0], 1), float(i)), b], dim=1) for i, b in enumerate(boxes)]
    return torch.cat(rois, dim=0) if rois else torch.zeros((0, 5))


def assign_fpn_levels(boxes: Tensor, min_level: int, max_level: int, canonical_size: float = 224.0,
                      canonical_level: int = 4) -> Tensor:
    """FPN level mapper (FPN paper eq. 1): ``floor(4 + log2(sqrt(area) / 224))`` clamped -> (K,)."""
    size = torch.sqrt((boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0))
    lvl = torch.floor(canonical_level + torch.log2(size / canonical_size + 1e-8))
    return lvl.clamp(min_level, max_level).long() - min_level


class MultiScaleRoIAlign(nn.Module):
    """RoIAlign over FPN levels: each box is pooled from the level its size maps to.

    With one level it is plain RoIAlign. Input features: list of (N, C, H_l, W_l) with strides
    ``strides``; boxes: per-image list of (K_i, 4) in padded-image pixels. Output (sum K_i, C, S, S).
    """

    def __init__(self, output_size: int, strides: tuple[int, ...], sampling_ratio: int = 2, aligned: bool = True):
        super().__init__()
        self.output_size = output_size
        self.strides = strides
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned
        self.min_level = int(round(math.log2(strides[0])))
        self.max_level = int(round(math.log2(strides[-1])))

    def forward(self, features: list[Tensor], boxes: list[Tensor]) -> Tensor:
        rois = boxes_to_rois(boxes).to(features[0].device)
        if len(features) == 1:
            return roi_align(features[0], rois, self.output_size, 1.0 / self.strides[0], self.sampling_ratio,
                             self.aligned)
        levels = assign_fpn_levels(rois[:, 1:], self.min_level, self.max_level)
        c = features[0].shape[1]
        out = features[0].new_zeros((rois.shape[0], c, self.output_size, self.output_size))
        for lvl, (feat, stride) in enumerate(zip(features, self.strides)):
            idx = torch.nonzero(levels == lvl).squeeze(1)
            if idx.numel():
                out[idx] = roi_align(feat, rois[idx], self.output_size, 1.0 / stride, self.sampling_ratio,
                                     self.aligned)
        return out
