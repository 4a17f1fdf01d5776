"""DensePose head: stride-4 decoder, conv head, chart predictor, losses and cross-cascading.

Follows detectron2's default chart-based DensePose-RCNN (docs: densepose_reference.md §1.2-1.6):

* :class:`Decoder` — Panoptic-FPN style: each of P2..P5 gets ``max(1, log2(stride) - 2)`` x
  (conv3x3 + ReLU [+ bilinear x2 unless already at stride 4]); the levels are summed and a 1x1 conv
  gives the stride-4 map RoIs are pooled from (RoIAlign 28x28, sampling 2, legacy ``aligned=False``
  as the reference's ``POOLER_TYPE: ROIAlign``).
* :class:`DensePoseHead` — ``num_convs`` x (conv3x3 ``dim`` + ReLU), Kaiming-normal fan-out init.
* :class:`DensePosePredictor` — four ConvTranspose2d(k4, s2, p1) + bilinear x2: 28 -> 56 -> 112;
  coarse S (2), fine I (25), U (25), V (25).
* :func:`densepose_losses` — see its docstring for every weight and reduction.
* :class:`CascadeFusion` — the second stage of cross-cascading (Güler et al. 2018, Fig. 7).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densepose.data.rle import DP_MASK_SIZE
from densepose.modeling.ops.groups import slots_in_groups
from densepose.modeling.roi_heads import ProposalSamples
from densepose.surface.parts import NUM_CHARTS

NUM_PATCHES = NUM_CHARTS  # detectron2's name for the chart count


def _msra(m: nn.Module) -> None:
    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    if m.bias is not None:
        nn.init.zeros_(m.bias)


class Decoder(nn.Module):
    """[P2, P3, P4, P5] (C_in each, strides 4..32) -> (N, out_channels, H/4, W/4)."""

    def __init__(self, in_channels: int, conv_dim: int, out_channels: int, strides=(4, 8, 16, 32)):
        super().__init__()
        self.scale_heads = nn.ModuleList()
        for s in strides:
            n = max(1, int(math.log2(s)) - 2)
            layers: list[nn.Module] = []
            for k in range(n):
                layers += [nn.Conv2d(in_channels if k == 0 else conv_dim, conv_dim, 3, 1, 1), nn.ReLU(inplace=True)]
                if s != strides[0]:
                    layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads.append(nn.Sequential(*layers))
        self.predictor = nn.Conv2d(conv_dim, out_channels, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                _msra(m)

    def forward(self, feats: list[Tensor]) -> Tensor:
        x = self.scale_heads[0](feats[0])
        for head, f in zip(self.scale_heads[1:], feats[1:]):
            y = head(f)
            # Odd padded sizes cannot occur (sizes are multiples of 32) but keep shapes safe.
            if y.shape[-2:] != x.shape[-2:]:
                y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
            x = x + y
        return self.predictor(x)


class DensePoseHead(nn.Module):
    """(K, C_in, 28, 28) -> (K, dim, 28, 28): ``num_convs`` x (conv3x3 + ReLU), no normalisation."""

    def __init__(self, in_channels: int, num_convs: int = 8, dim: int = 512):
        super().__init__()
        layers = []
        for i in range(num_convs):
            layers += [nn.Conv2d(in_channels if i == 0 else dim, dim, 3, 1, 1), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                _msra(m)
        self.out_channels = dim

    def forward(self, x: Tensor) -> Tensor:
        return self.convs(x)


class DensePosePredictor(nn.Module):
    """(K, dim, R, R) -> dict coarse_segm (K,2,4R,4R), fine_segm/u/v (K,25,4R,4R)."""

    def __init__(self, dim: int):
        super().__init__()
        self.ann_index_lowres = nn.ConvTranspose2d(dim, 2, 4, 2, 1)
        self.index_uv_lowres = nn.ConvTranspose2d(dim, NUM_CHARTS + 1, 4, 2, 1)
        self.u_lowres = nn.ConvTranspose2d(dim, NUM_CHARTS + 1, 4, 2, 1)
        self.v_lowres = nn.ConvTranspose2d(dim, NUM_CHARTS + 1, 4, 2, 1)
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                _msra(m)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        return {
            "coarse_segm": up(self.ann_index_lowres(x)),
            "fine_segm": up(self.index_uv_lowres(x)),
            "u": up(self.u_lowres(x)),
            "v": up(self.v_lowres(x)),
        }


class CascadeFusion(nn.Module):
    """Cross-cascading input of the second stage (Güler et al. 2018, Fig. 7).

    Everything lives on the DensePose RoI grid (R x R, R = 28, from the stride-4 decoder map):

    * RoI features (K, C_dec, R, R) — the same pooled decoder features the first stage saw;
    * stage-1 DensePose head features (K, dim, R, R);
    * stage-1 DensePose outputs S, I, U, V (K, 77, 112, 112) average-pooled x4 to R;
    * if the mask head is on: its last conv features (K, 256, 14, 14) bilinearly upsampled to R and
      its mask logits (K, 1, 28, 28);
    * if the keypoint head is on: its conv features (K, 512, 14, 14) upsampled to R and its heatmap
      logits (K, 17, 56, 56) average-pooled x2 to R.

    The concatenation goes through a 1x1 conv + ReLU to ``out_channels``, then into a second
    :class:`DensePoseHead` + :class:`DensePosePredictor` with its own losses. Mask and keypoint
    heads are run on the same boxes as the DensePose head (the DP proposals are a subset of their fg
    proposals in training, the detections at test time), and gradients flow into them, as the
    paper trains the cascade end to end.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, out_channels, 1)
        _msra(self.reduce)

    @staticmethod
    def gather(size: int, roi_feat: Tensor, dp_feat: Tensor, dp_out: dict[str, Tensor],
               mask: tuple[Tensor, Tensor] | None, kp: tuple[Tensor, Tensor] | None) -> Tensor:
        def to(t: Tensor) -> Tensor:
            if t.shape[-1] == size:
                return t
            if t.shape[-1] % size == 0:
                return F.avg_pool2d(t, t.shape[-1] // size)
            return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)

        parts = [roi_feat, dp_feat] + [to(dp_out[k]) for k in ("coarse_segm", "fine_segm", "u", "v")]
        for extra in (mask, kp):
            if extra is not None:
                out, feat = extra
                parts += [to(feat), to(out)]
        return torch.cat(parts, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.reduce(x))


# ------------------------------------------------------------------------------------- targets


@dataclass
class DensePoseTargets:
    """DensePose GT of a batch, packed flat so proposals can gather it without Python loops.

    ``gt_boxes`` (G, 4) are the boxes of all GT instances of the batch that carry DP data;
    points of instance g are ``x[ptr[g]:ptr[g+1]]`` (``x``, ``y`` in 0..256 box coordinates, ``I``
    1..24, ``U``, ``V``); ``masks`` (G, 256, 256) long labels 0..14, ``has_mask`` (G,) bool.
    """

    gt_boxes: Tensor
    ptr: Tensor
    x: Tensor
    y: Tensor
    I: Tensor  # noqa: E741
    U: Tensor
    V: Tensor
    masks: Tensor
    has_mask: Tensor


def pack_targets(dp_list: list, gt_boxes: Tensor, device) -> DensePoseTargets:
    """``dp_list``: G entries, each a dict (x, y, I, U, V, optional mask) — no ``None`` here."""
    def cat(key, dtype):
        vals = [torch.as_tensor(d[key], dtype=dtype).reshape(-1) for d in dp_list]
        return torch.cat(vals).to(device) if vals else torch.zeros(0, dtype=dtype, device=device)

    counts = torch.tensor([len(torch.as_tensor(d["x"]).reshape(-1)) for d in dp_list], dtype=torch.long)
    ptr = torch.zeros(len(dp_list) + 1, dtype=torch.long)
    ptr[1:] = counts.cumsum(0)
    masks, has = [], []
    for d in dp_list:
        m = d.get("mask")
        has.append(m is not None)
        masks.append(torch.zeros(DP_MASK_SIZE, DP_MASK_SIZE, dtype=torch.long) if m is None
                     else torch.as_tensor(m).long().reshape(DP_MASK_SIZE, DP_MASK_SIZE))
    return DensePoseTargets(
        gt_boxes=gt_boxes.to(device),
        ptr=ptr.to(device),
        x=cat("x", torch.float32), y=cat("y", torch.float32), I=cat("I", torch.long),
        U=cat("U", torch.float32), V=cat("V", torch.float32),
        masks=(torch.stack(masks) if masks else torch.zeros(0, DP_MASK_SIZE, DP_MASK_SIZE, dtype=torch.long)).to(device),
        has_mask=torch.tensor(has, dtype=torch.bool, device=device),
    )


def densepose_rois(samples: ProposalSamples, targets: list[dict], fg_iou: float,
                   max_per_image: int) -> tuple[DensePoseTargets, list[Tensor], list[Tensor], Tensor]:
    """The foreground proposals that train the DensePose head, and their packed targets.

    A proposal trains it when it overlaps its ground truth by IoU > ``fg_iou`` and that person
    carries DensePose data; at most ``max_per_image`` per image (0: no limit), drawn at random.
    The rows of every image are chosen at once (the cap as a rank among random keys within each
    image): two host syncs for the batch, whatever the number of images.

    Args:
        samples: the batch's `densepose.modeling.roi_heads.ProposalSamples`.
        targets: per image the target dict (``boxes`` (G_i, 4), ``dp`` G_i entries or None).

    Returns:
        (packed targets of every person with DensePose data in the batch, per image the chosen
        boxes (D_i, 4) and their index into the packed targets (D_i,), (sum F_i,) bool: which of
        the foreground rows (`ProposalSamples.fg_rows`) are chosen).
    """
    device = samples.boxes.device
    # Global index of every DP-carrying GT across the batch; -1 where a GT has no DP data.
    dp_entries, dp_boxes, dp_index, first_gt = [], [], [], []
    for t in targets:
        first_gt.append(len(dp_index))
        for g, d in enumerate(t.get("dp") or [None] * t["boxes"].shape[0]):
            dp_index.append(-1 if d is None else len(dp_entries))
            if d is not None:
                dp_entries.append(d)
                dp_boxes.append(t["boxes"][g])
    packed = pack_targets(dp_entries, torch.stack(dp_boxes) if dp_boxes else torch.zeros((0, 4), device=device), device)
    rows = samples.fg_rows()
    img = samples.image[rows]
    # A foreground row's image has GT: its gt_index is a real GT of that image.
    gt_row = torch.tensor(first_gt, dtype=torch.long).to(device)[img] + samples.gt_index[rows]
    dpg = torch.tensor(dp_index, dtype=torch.long).to(device)[gt_row]
    keep = (samples.iou[rows] > fg_iou) & (dpg >= 0)
    if max_per_image:
        # Rank the eligible rows of each image by a random key (the others after them), keep the first.
        key = torch.rand(keep.shape, device=device) + (~keep).to(torch.float32) * 2
        by_key = torch.argsort(key)
        rank = torch.empty_like(img)
        rank[by_key] = slots_in_groups(img[by_key], torch.bincount(img, minlength=len(targets)))
        keep &= rank < max_per_image
    chosen = keep.nonzero()[:, 0]
    counts = torch.bincount(img[chosen], minlength=len(targets)).tolist()
    return packed, list(samples.boxes[rows[chosen]].split(counts)), list(dpg[chosen].split(counts)), keep


def coarse_targets(boxes: Tensor, gt_index: Tensor, t: DensePoseTargets, size: int) -> Tensor:
    """Part mask of the matched GT resampled into each proposal -> (K, size, size) long in {0, 1},
    -100 (ignored) for GT without a mask. Nearest sampling at heatmap cell centres; outside the
    GT box is background (the reference's zeros padding)."""
    k = boxes.shape[0]
    g = t.gt_boxes[gt_index]
    cells = (torch.arange(size, device=boxes.device, dtype=boxes.dtype) + 0.5) / size
    xs = boxes[:, 0:1] + cells[None] * (boxes[:, 2:3] - boxes[:, 0:1])  # (K, S) image x
    ys = boxes[:, 1:2] + cells[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    mx = ((xs - g[:, 0:1]) / (g[:, 2:3] - g[:, 0:1]).clamp(min=1e-6) * DP_MASK_SIZE).floor().long()
    my = ((ys - g[:, 1:2]) / (g[:, 3:4] - g[:, 1:2]).clamp(min=1e-6) * DP_MASK_SIZE).floor().long()
    vx = (mx >= 0) & (mx < DP_MASK_SIZE)
    vy = (my >= 0) & (my < DP_MASK_SIZE)
    flat = t.masks.reshape(t.masks.shape[0], -1)
    idx = my.clamp(0, DP_MASK_SIZE - 1)[:, :, None] * DP_MASK_SIZE + mx.clamp(0, DP_MASK_SIZE - 1)[:, None, :]
    lab = flat[gt_index[:, None], idx.reshape(k, -1)].reshape(k, size, size)
    lab = torch.where(vy[:, :, None] & vx[:, None, :], lab, torch.zeros_like(lab))
    lab = (lab > 0).long()
    return torch.where(t.has_mask[gt_index][:, None, None], lab, torch.full_like(lab, -100))


def point_samples(boxes: Tensor, gt_index: Tensor, t: DensePoseTargets, size: int):
    """Map every GT point of each proposal's matched GT into that proposal's heatmap.

    Returns ``(roi (P,), fx (P,), fy (P,), I, U, V)`` for the points inside the proposal, where
    (fx, fy) are continuous heatmap index coordinates (cell k has centre k). A GT point at box
    coordinate x (0..256) sits at image ``gx0 + x / 256 * gw`` and at index
    ``(img - px0) / pw * S - 0.5`` — the centre convention of the bilinear, align_corners=False
    resize used at inference; the reference omits the ``- 0.5`` (a 0.5/112 box-width shift).
    """
    counts = t.ptr[gt_index + 1] - t.ptr[gt_index]  # (K,)
    roi = torch.repeat_interleave(torch.arange(boxes.shape[0], device=boxes.device), counts)
    starts = torch.repeat_interleave(t.ptr[gt_index], counts)
    within = torch.arange(roi.numel(), device=boxes.device) - torch.repeat_interleave(
        counts.cumsum(0) - counts, counts)
    pid = starts + within
    g = t.gt_boxes[gt_index[roi]]
    b = boxes[roi]
    ix = g[:, 0] + t.x[pid] / DP_MASK_SIZE * (g[:, 2] - g[:, 0])
    iy = g[:, 1] + t.y[pid] / DP_MASK_SIZE * (g[:, 3] - g[:, 1])
    inside = (ix >= b[:, 0]) & (ix <= b[:, 2]) & (iy >= b[:, 1]) & (iy <= b[:, 3]) & (t.I[pid] > 0)
    fx = (ix - b[:, 0]) / (b[:, 2] - b[:, 0]).clamp(min=1e-6) * size - 0.5
    fy = (iy - b[:, 1]) / (b[:, 3] - b[:, 1]).clamp(min=1e-6) * size - 0.5
    pid, roi = pid[inside], roi[inside]
    return roi, fx[inside], fy[inside], t.I[pid], t.U[pid], t.V[pid]


def bilinear_at(maps: Tensor, roi: Tensor, fx: Tensor, fy: Tensor, channel: Tensor | None = None) -> Tensor:
    """Sample (K, C, S, S) maps at (P,) points of roi ``roi`` -> (P, C), or (P,) at ``channel``."""
    s = maps.shape[-1]
    fx = fx.clamp(0, s - 1)
    fy = fy.clamp(0, s - 1)
    x0 = fx.floor().long().clamp(max=s - 2)
    y0 = fy.floor().long().clamp(max=s - 2)
    wx, wy = fx - x0, fy - y0
    flat = maps.flatten(2)  # (K, C, S*S)

    def at(yy, xx):
        idx = yy * s + xx
        return flat[roi, :, idx] if channel is None else flat[roi, channel, idx]

    w00, w01 = (1 - wy) * (1 - wx), (1 - wy) * wx
    w10, w11 = wy * (1 - wx), wy * wx
    if channel is None:
        w00, w01, w10, w11 = (w[:, None] for w in (w00, w01, w10, w11))
    return at(y0, x0) * w00 + at(y0, x0 + 1) * w01 + at(y0 + 1, x0) * w10 + at(y0 + 1, x0 + 1) * w11


def densepose_losses(out: dict[str, Tensor], boxes: Tensor, gt_index: Tensor, t: DensePoseTargets,
                     w_segm: float = 5.0, w_part: float = 1.0, w_uv: float = 0.01,
                     uv_reduction: str = "sum", suffix: str = "") -> dict[str, Tensor]:
    """DensePose losses of K proposals (boxes (K, 4), matched DP GT ``gt_index`` (K,)).

    * ``loss_densepose_S``: cross-entropy, **mean** over all K x 112 x 112 heatmap cells, against the
      binarised 256x256 part mask resampled into the proposal (:func:`coarse_targets`), x ``w_segm``
      (5.0). The reference weighs S heavily because it is a dense, easy, fast-saturating target that
      gates the final labels (I is masked by argmax S).
    * ``loss_densepose_I``: cross-entropy over the 25-way logits bilinearly sampled at the annotated
      points, **mean** over points, x ``w_part`` (1.0).
    * ``loss_densepose_U`` / ``_V``: smooth-L1 (beta 1) on the GT chart's channel at the points,
      **sum** over points (``uv_reduction="sum"``, the reference), x ``w_uv`` (0.01). The sum makes
      the UV gradient grow with the number of points per batch (~100 per person) — the small weight
      compensates for that; ``uv_reduction="mean"`` gives a batch-size independent alternative
      (then a weight near 1 is the comparable choice).

    With no proposal or no valid point the losses are ``out.sum() * 0`` so every parameter gets a
    (zero) gradient and DDP graphs stay identical across workers.
    """
    zero = sum(v.sum() for v in out.values()) * 0.0
    names = [f"loss_densepose_{k}{suffix}" for k in ("S", "I", "U", "V")]
    if boxes.shape[0] == 0:
        return {n: zero for n in names}
    size = out["coarse_segm"].shape[-1]
    seg_t = coarse_targets(boxes, gt_index, t, size)
    if bool((seg_t >= 0).any()):
        loss_s = F.cross_entropy(out["coarse_segm"], seg_t, ignore_index=-100) * w_segm
    else:
        loss_s = zero
    roi, fx, fy, I, U, V = point_samples(boxes, gt_index, t, size)
    if roi.numel() == 0:
        return {names[0]: loss_s, names[1]: zero, names[2]: zero, names[3]: zero}
    loss_i = F.cross_entropy(bilinear_at(out["fine_segm"], roi, fx, fy), I) * w_part
    u = bilinear_at(out["u"], roi, fx, fy, I)
    v = bilinear_at(out["v"], roi, fx, fy, I)
    red = "sum" if uv_reduction == "sum" else "mean"
    loss_u = F.smooth_l1_loss(u, U, reduction=red, beta=1.0) * w_uv
    loss_v = F.smooth_l1_loss(v, V, reduction=red, beta=1.0) * w_uv
    return {names[0]: loss_s, names[1]: loss_i, names[2]: loss_u, names[3]: loss_v}
