"""``Detectron2DensePoseRCNN``: detectron2's chart-based DensePose R-CNN at inference, in plain torch.

Same eval contract as our `DensePoseRCNN` (docs/ARCHITECTURE.md): ``model(images, *, min_size,
max_size, score_thresh)`` with (3, H, W) float RGB 0..255 images returns per image ``boxes`` (N, 4)
xyxy in input pixels, ``scores`` (N,), ``coarse_segm`` (N, 2 | 15, S, S), ``fine_segm``/``u``/``v``
(N, 25, S, S) with S = 112 (56 for legacy models), plus the confidence maps of WC models
(`densepose.modeling.detectron2.predictor`). I/U/V are on the official SMPL chart (``chart``).

The pipeline and its defaults (detectron2 ``configs/Base-DensePose-RCNN-FPN.yaml`` and
``detectron2/config/defaults.py``):

1. Input: resize so the shorter side is 800 and the longer <= 1333 (``densepose.modeling.transform``),
   RGB -> BGR, minus the BGR pixel mean (103.530, 116.280, 123.675), std 1, zero padding to 32.
2. ResNet (FrozenBN, stride in 1x1) + FPN P2..P6 (P6 = max-pool k1 s2 of P5).
3. RPN: anchors 32..512 (one size per level) x ratios (0.5, 1, 2), offset 0; per level the top
   1000 logits, deltas decoded with weights (1, 1, 1, 1), clipped, empty boxes dropped, NMS 0.7
   per level, best 1000 per image.
4. Box head: RoIAlign 7x7 from P2..P5 (FPN level rule, canonical 224 / level 4), sampling 2,
   ``POOLER_TYPE: ROIAlign`` (``aligned=False``); fc 1024 x 2; softmax over [person,
   background]; class deltas decoded with (10, 10, 5, 5), clipped; score > 0.05, NMS 0.5, 100
   per image. Boxes that are empty once mapped back to the input are dropped (detectron2's
   ``detector_postprocess``).
5. DensePose: the stride-4 decoder map pooled at 28x28 (``aligned=False``, sampling 2), or P2..P5
   at 14x14 for legacy models; V1ConvX or DeepLab head; chart predictor.
6. With ``flip_uv``: the head also reads the mirrored image at the mirrored boxes, and coarse,
   fine, U and V are averaged with it (detectron2's DensePose test-time flip, with the plain boxes).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densepose.modeling.backbone import FPN
from densepose.modeling.config import ModelConfig
from densepose.modeling.densepose_head import Decoder, DensePoseHead
from densepose.modeling.detectron2.deeplab import DeepLabHead
from densepose.modeling.detectron2.predictor import ChartPredictor
from densepose.modeling.detectron2.resnet import ResNet
from densepose.modeling.detectron2.variant import Variant
from densepose.modeling.flip_test import average_outputs, mirror_boxes, mirror_images, unmirror_outputs
from densepose.modeling.ops import MultiScaleRoIAlign, batched_nms, clip_boxes, decode_boxes, nonempty
from densepose.modeling.roi_heads import BoxHead
from densepose.modeling.rpn import RPN
from densepose.modeling.transform import ImageBatch, RCNNTransform

#: detectron2's MODEL.PIXEL_MEAN (BGR order) and PIXEL_STD.
PIXEL_MEAN_BGR = (103.530, 116.280, 123.675)
PIXEL_STD_BGR = (1.0, 1.0, 1.0)
FPN_CHANNELS = 256


class Backbone(nn.Module):
    """``bottom_up`` (detectron2 ResNet) + ``fpn`` (ours, same arithmetic): (N, 3, H, W) BGR -> [P2..P6]."""

    def __init__(self, depth: int):
        super().__init__()
        self.bottom_up = ResNet(depth)
        self.fpn = FPN(self.bottom_up.out_channels, FPN_CHANNELS)

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.fpn(self.bottom_up(x))


def detectron2_box_inference(logits: Tensor, deltas: Tensor, proposals: list[Tensor], sizes: list[tuple[int, int]],
                             score_thresh: float, nms_thresh: float, per_image: int,
                             weights: tuple[float, float, float, float]) -> list[tuple[Tensor, Tensor]]:
    """detectron2's ``fast_rcnn_inference`` for one class: logits (K, 2) [person, background], deltas (K, 4)
    -> per image (boxes (n, 4), scores (n,)) by decreasing score.

    Unlike our own ``box_inference``, empty boxes are not removed before NMS (detectron2 removes them
    after mapping back to the input).
    """
    scores = F.softmax(logits, dim=1)[:, 0]
    boxes = decode_boxes(deltas, torch.cat(proposals), weights)
    out, start = [], 0
    for props, (h, w) in zip(proposals, sizes):
        b, s = boxes[start:start + props.shape[0]], scores[start:start + props.shape[0]]
        start += props.shape[0]
        ok = torch.isfinite(b).all(dim=1) & torch.isfinite(s)
        b, s = clip_boxes(b[ok], h, w), s[ok]
        ok = s > score_thresh
        b, s = b[ok], s[ok]
        keep = batched_nms(b, s, torch.zeros_like(s, dtype=torch.long), nms_thresh)[:per_image]
        out.append((b[keep], s[keep]))
    return out


class Detectron2DensePoseRCNN(nn.Module):
    """A detectron2 DensePose chart model of the given `Variant` (weights: `load_detectron2_model`)."""

    chart = "smpl"

    def __init__(self, variant: Variant):
        super().__init__()
        self.variant = variant
        # detectron2's test-time settings (RPN, box head, input size) are our ModelConfig defaults.
        self.cfg = ModelConfig(min_size_train=(800,), pixel_mean=PIXEL_MEAN_BGR[::-1], pixel_std=PIXEL_STD_BGR)
        cfg = self.cfg
        self.transform = self._make_transform()
        self.backbone = Backbone(variant.depth)
        strides = FPN.strides
        self.rpn = RPN(cfg, FPN_CHANNELS, strides)
        self.box_pooler = MultiScaleRoIAlign(cfg.box_pool, strides[:4], 2, aligned=False)
        self.box_head = BoxHead(FPN_CHANNELS, cfg.box_pool, cfg.box_fc_dim)
        if variant.decoder:
            self.dp_decoder = Decoder(FPN_CHANNELS, FPN_CHANNELS, FPN_CHANNELS)
            self.dp_pooler = MultiScaleRoIAlign(variant.pool_size, (4,), 2, aligned=False)
        else:
            self.dp_pooler = MultiScaleRoIAlign(variant.pool_size, strides[:4], 2, aligned=False)
        if variant.head == "deeplab":
            self.dp_head = DeepLabHead(FPN_CHANNELS, variant.num_convs, variant.head_dim, variant.nonlocal_block)
        else:
            self.dp_head = DensePoseHead(FPN_CHANNELS, variant.num_convs, variant.head_dim)
        self.dp_predictor = ChartPredictor(variant.head_dim, variant.coarse_channels, variant.uv_confidence,
                                           variant.segm_confidence)
        self.to(memory_format=torch.channels_last)

    def _make_transform(self) -> RCNNTransform:
        cfg = self.cfg
        return RCNNTransform(cfg.min_size_train, cfg.min_size_test, cfg.max_size, cfg.size_divisibility,
                             cfg.pixel_mean, cfg.pixel_std)

    @property
    def heatmap_size(self) -> int:
        return 4 * self.variant.pool_size

    def features(self, images: Tensor) -> list[Tensor]:
        """Normalised RGB batch (N, 3, H, W) (RGB mean subtracted) -> BGR -> [P2..P6]."""
        return self.backbone(images[:, [2, 1, 0]].contiguous(memory_format=torch.channels_last))

    def densepose(self, feats: list[Tensor], boxes: list[Tensor]) -> dict[str, Tensor]:
        """DensePose maps for per-image boxes (K_i, 4) in network pixels -> dict of (sum K_i, C, S, S)."""
        k = sum(b.shape[0] for b in boxes)
        if k == 0:  # GroupNorm and the non-local block reject an empty batch
            s = self.heatmap_size
            return {name: feats[0].new_zeros((0, c, s, s)) for name, c in self.dp_predictor.output_channels().items()}
        source = [self.dp_decoder(feats[:4])] if self.variant.decoder else feats[:4]
        return self.dp_predictor(self.dp_head(self.dp_pooler(source, boxes)))

    def forward(self, images: list[Tensor], targets: list[dict] | None = None, *, min_size: int | None = None,
                max_size: int | None = None, score_thresh: float | None = None,
                flip_uv: Tensor | None = None) -> list[dict[str, Tensor]]:
        """Eval only. ``score_thresh`` replaces the 0.05 test threshold (scores >= it are kept);
        ``flip_uv``, the SMPL chart's (24, 256, 256, 2) symmetry tables, turns on the flip test
        (`densepose.modeling.flip_test`; boxes and scores stay those of the plain pass)."""
        if self.training or targets is not None:
            raise ValueError("detectron2 models are loaded for inference only (model.eval(), no targets)")
        min_size = min_size or self.cfg.min_size_test
        max_size = max_size or self.cfg.max_size
        return self.transform.run_in_padding_groups(images, lambda b: self._inference(b, score_thresh, flip_uv),
                                                    min_size, max_size)

    @torch.no_grad()
    def _inference(self, batch: ImageBatch, score_thresh: float | None,
                   flip_uv: Tensor | None = None) -> list[dict[str, Tensor]]:
        cfg = self.cfg
        feats = self.features(batch.tensor)
        proposals, _ = self.rpn(feats, batch.sizes, cfg)
        logits, deltas = self.box_head(self.box_pooler(feats[:4], proposals))
        thresh = cfg.score_thresh_test if score_thresh is None else math.nextafter(float(score_thresh), -math.inf)
        dets = detectron2_box_inference(logits, deltas, proposals, batch.sizes, thresh, cfg.nms_thresh_test,
                                        cfg.detections_per_image, cfg.box_reg_weights)
        boxes = [b for b, _ in dets]
        maps = self.densepose(feats, boxes)
        counts = [b.shape[0] for b in boxes]
        if flip_uv is not None and sum(counts):
            mirrored = self.densepose(self.features(mirror_images(batch.tensor, batch.sizes)),
                                      [mirror_boxes(b, w) for b, (_, w) in zip(boxes, batch.sizes)])
            maps = average_outputs(maps, unmirror_outputs(mirrored, flip_uv))
        results = [{"boxes": b, "scores": s} for b, s in dets]
        for key, value in maps.items():
            for r, part in zip(results, value.split(counts)):
                r[key] = part
        results = self.transform.to_input_pixels(results, batch)
        for i, r in enumerate(results):
            keep = nonempty(r["boxes"])
            if not bool(keep.all()):
                results[i] = {key: value[keep] for key, value in r.items()}
        return results
