"""Export a whole DensePose detector (ours or a loaded detectron2 model) to TorchScript or ONNX.

The exported graph (`ExportPipeline`) runs from one image of any size to per-person DensePose maps:

    image (3, H, W) RGB 0..255 (float32 in ONNX; uint8 or float in TorchScript), any H, W
    -> boxes (N, 4) xyxy in the INPUT image's pixels, scores (N,) (decreasing, unless
       the model has a person check: `densepose.modeling.person_check`),
       labels (N, S, S) uint8 0..24 (I, 0 = background), u, v (N, S, S) float32 in [0, 1]
       [+ sigma_2, kappa_u, kappa_v, fine_segm_confidence, coarse_segm_confidence (N, C, S, S)
        for detectron2 WC models]
       [+ map_boxes (N, 4) xyxy in input pixels, the boxes the maps cover, for models whose
        DensePose head reads grown boxes (``dp_margin_x``, ``dp_margin_y``)]

with N dynamic (0 .. ``detections_per_image``) and S the head's output size (112, 56 for legacy
detectron2 heads). Inside: the eager resize (shorter side ``min_size_test``, longer <=
``max_size``, antialiased bilinear), normalisation (and RGB -> BGR for detectron2 models), zero
padding to a multiple of 32, backbone + FPN, RPN (per-level top-k, NMS), box head (score threshold,
NMS, top-k), the DensePose head (and the facing classifier and person check), boxes mapped back to
input pixels, and the official labelling rule at S x S (`labels_uv`). Left to the caller:
resizing each S x S map to its box, or to its ``map_boxes`` row when the graph has that output
(nearest for labels, bilinear for U/V); the eager `densepose_to_labels_uv` instead resizes the
head logits to the box before the argmax, so labels at box size can differ from it along part
borders.

Graph-friendly reformulations (same results): the per-level top-k pads each level with -inf
scores to a fixed k, empty boxes get a -inf score instead of being removed, and multi-level
RoIAlign pools every box from every level and keeps its own level's result. The resized size
rounds half up (Python's ``round`` has no ONNX form; they differ only when the scaled side is an
exact half). NMS and RoIAlign are `densepose.engine.export_ops` (ONNX ``NonMaxSuppression`` /
``RoiAlign``).
"""
from __future__ import annotations

import copy
import logging
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densepose.engine import export_ops  # noqa: F401  (registers torch.ops.densepose_export)
from densepose.errors import UserError
from densepose.modeling.backbone import FrozenBatchNorm2d
from densepose.modeling.box_passes import read_boxes
from densepose.modeling.facing import CROP_SAMPLING_RATIO, FACING_CROP, crop_boxes, to_facing_input
from densepose.modeling.facing_people import PEOPLE_CROP
from densepose.modeling.second_look import people_look, settle_uv
from densepose.modeling.skeleton_prior import Skeleton, on_map
from densepose.modeling.covered_boxes import demote_repeated
from densepose.modeling.group_boxes import group_boxes
from densepose.modeling.person_check import checked_scores, cut_by_bottom
from densepose.modeling.ops import MultiScaleRoIAlign, assign_fpn_levels, clip_boxes, decode_boxes, grow_boxes, nonempty
from densepose.modeling.rcnn import DP_OUTPUT_KEYS
from densepose.modeling.roi_heads import refined_rows

log = logging.getLogger(__name__)

FORMATS = ("torchscript", "onnx")
#: ONNX NonMaxSuppression keeps scores strictly above its threshold: this keeps every finite score.
_KEEP_FINITE = -3.0e38


def _is_detectron2(model: nn.Module) -> bool:
    from densepose.modeling.detectron2 import Detectron2DensePoseRCNN

    return isinstance(model, Detectron2DensePoseRCNN)


def _with_frozen_norms(model: nn.Module) -> nn.Module:
    """``model``, or a copy whose ``BatchNorm2d`` layers (the crop classifiers') are the same
    per-channel affine maps as `FrozenBatchNorm2d`: batch norm checks for an empty batch, which
    ``torch.export`` cannot trace when the batch is the number of detections."""
    names = [name for name, module in model.named_modules() if type(module) is nn.BatchNorm2d]
    if not names:
        return model
    model = copy.deepcopy(model)
    for name in names:
        parent, _, child = name.rpartition(".")
        norm = model.get_submodule(name)
        frozen = FrozenBatchNorm2d(norm.num_features, norm.eps)
        if norm.affine:
            frozen.weight.copy_(norm.weight.detach())
            frozen.bias.copy_(norm.bias.detach())
        frozen.running_mean.copy_(norm.running_mean)
        frozen.running_var.copy_(norm.running_var)
        setattr(model.get_submodule(parent), child, frozen.to(norm.running_mean.device))
    return model


class ExportPipeline(nn.Module):
    """Graph-exportable inference of a `DensePoseRCNN` or `Detectron2DensePoseRCNN` (module docstring)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        cfg = model.cfg
        if not getattr(cfg, "densepose_on", True) or getattr(cfg, "cascade", False):
            raise UserError("export: the model needs a single-stage DensePose head (cascade models are not exportable)")
        self.model = _with_frozen_norms(model).eval()
        self.detectron2 = _is_detectron2(model)
        extra = [k for k in model.dp_predictor.output_channels() if k not in DP_OUTPUT_KEYS] if self.detectron2 else []
        # A model whose DensePose head reads grown boxes says where its maps lie.
        self.grows = not self.detectron2 and (cfg.dp_margin_x > 0 or cfg.dp_margin_y > 0)
        self.output_names = ["boxes", "scores", "labels", "u", "v", *extra, *(["map_boxes"] if self.grows else [])]

    def _pool(self, feats: list[Tensor], boxes: Tensor, pooler: MultiScaleRoIAlign) -> Tensor:
        """(K, 4) boxes -> (K, C, S, S), each box from its FPN level (every level pooled, one kept)."""
        pool = lambda f, stride: torch.ops.densepose_export.roi_align(  # noqa: E731
            f, boxes, pooler.output_size, pooler.output_size, 1.0 / stride, pooler.sampling_ratio, pooler.aligned)
        if len(pooler.strides) == 1:
            return pool(feats[0], pooler.strides[0])
        levels = assign_fpn_levels(boxes, pooler.min_level, pooler.max_level)
        out = pool(feats[0], pooler.strides[0])
        for lvl in range(1, len(pooler.strides)):
            out = torch.where((levels == lvl)[:, None, None, None], pool(feats[lvl], pooler.strides[lvl]), out)
        return out

    def _proposals(self, feats: list[Tensor], height, width) -> Tensor:
        rpn, cfg = self.model.rpn, self.model.cfg
        anchors = rpn.anchor_generator([f.shape[-2:] for f in feats])
        logits, deltas = rpn.head(feats)
        k = cfg.rpn_pre_nms_topk_test
        boxes_l, scores_l, level_l = [], [], []
        for lvl, (anc, lo, de) in enumerate(zip(anchors, logits, deltas)):
            # Pad to >= k entries so top-k has a fixed size; padding scores -inf never survive NMS.
            lo = torch.cat([lo[0], lo.new_full((k,), -math.inf)])
            de = torch.cat([de[0], de.new_zeros((k, 4))])
            anc = torch.cat([anc, anc.new_zeros((k, 4))])
            top, idx = lo.topk(k)
            boxes_l.append(decode_boxes(de[idx], anc[idx], (1.0, 1.0, 1.0, 1.0)))
            scores_l.append(top)
            level_l.append(torch.full((k,), float(lvl), device=lo.device))
        boxes = clip_boxes(torch.cat(boxes_l), height, width)
        scores = torch.cat(scores_l)
        scores = torch.where(nonempty(boxes) & torch.isfinite(scores), scores, torch.full_like(scores, -math.inf))
        shifted = boxes + (torch.cat(level_l) * (boxes.max() + 1.0))[:, None]  # NMS per level in one call
        keep = torch.ops.densepose_export.nms(shifted, scores, cfg.rpn_nms_thresh, _KEEP_FINITE,
                                              cfg.rpn_post_nms_topk_test)
        return boxes[keep]

    def _test_size(self, height, width):
        """Resized (h, w) by the `resize_shape` rule, and the xyxy scale (4,) = resized / input size.

        Traced (TorchScript) sizes are 0-dim tensors, exported (ONNX) ones symbolic ints."""
        cfg = self.model.cfg
        if torch.jit.is_tracing():
            h, w = torch.as_tensor(height).float(), torch.as_tensor(width).float()
            scale = torch.minimum(cfg.min_size_test / torch.minimum(h, w), cfg.max_size / torch.maximum(h, w))
            new_h, new_w = (torch.floor(h * scale + 0.5).clamp(min=1).long(),
                            torch.floor(w * scale + 0.5).clamp(min=1).long())
            return new_h, new_w, torch.stack([new_w / w, new_h / h, new_w / w, new_h / h])
        scale = torch.sym_min(cfg.min_size_test / torch.sym_min(height, width),
                              cfg.max_size / torch.sym_max(height, width))
        new_h = torch.sym_max(1, torch.sym_int(height * scale + 0.5))
        new_w = torch.sym_max(1, torch.sym_int(width * scale + 0.5))
        return new_h, new_w, torch.tensor([new_w / width, new_h / height, new_w / width, new_h / height])

    def _detect(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Resized float image (3, h, w) -> boxes (N, 4) in its pixels, scores (N,), head maps (N, C, S, S)."""
        model, cfg = self.model, self.model.cfg
        height, width = x.shape[-2], x.shape[-1]
        x = (x - model.transform.pixel_mean) / model.transform.pixel_std
        d = cfg.size_divisibility
        x = F.pad(x, (0, (d - width % d) % d, 0, (d - height % d) % d))[None]
        feats = model.features(x) if self.detectron2 else model.backbone(x)
        proposals = self._proposals(feats, height, width)
        read = lambda per_image: model.box_head(self._pool(feats[:4], per_image[0], model.box_pooler))  # noqa: E731
        if self.detectron2:
            logits, deltas = read([proposals])
            scores = F.softmax(logits, dim=1)[:, 0]
            boxes = clip_boxes(decode_boxes(deltas, proposals, cfg.box_reg_weights), height, width)
        else:  # our own model may read its boxes again, and drops empty boxes before NMS
            (scores,), (boxes,) = read_boxes(read, [proposals], [(height, width)], cfg.box_reg_weights,
                                             cfg.box_head_passes, cfg.box_again_min_score)
            scores = torch.where(nonempty(boxes), scores, torch.full_like(scores, -1.0))
        keep = torch.ops.densepose_export.nms(boxes, scores, cfg.nms_thresh_test, cfg.score_thresh_test,
                                              cfg.detections_per_image)
        # As `box_inference`: the rows are chosen on the boxes as regressed; the heads and the
        # outputs read the voted ones (`refined`).
        refined = refined_rows(boxes, scores, keep, cfg)
        boxes, scores = boxes[keep], scores[keep]
        if getattr(cfg, "drop_group_boxes", False):
            pairs = group_boxes(boxes, scores)
            boxes, scores, refined = boxes[~pairs], scores[~pairs], refined[~pairs]
        uses_decoder = getattr(model, "dp_decoder", None) is not None
        source = [model.dp_decoder(feats[:4])] if uses_decoder else feats[:4]
        map_boxes = refined
        if self.grows:
            map_boxes = clip_boxes(grow_boxes(refined, cfg.dp_margin_x, cfg.dp_margin_y), height, width)
        maps = model.dp_predictor(model.dp_head(self._pool(source, map_boxes, model.dp_pooler)))
        if self.grows:
            maps = {**maps, "map_boxes": map_boxes}
        p_camera = skeleton = None
        if getattr(cfg, "facing_on", False):
            c4, people_crops = self._crop_features(x, boxes)
            logits = model.facing.lite0_logits(c4)
            if people_crops is not None:
                logits, keypoints = people_look(model, logits, people_crops, boxes)
                if keypoints is not None:
                    skeleton = on_map(Skeleton(*keypoints, map_boxes), maps["fine_segm"].shape[-1])
            p_camera = logits.sigmoid()
            if getattr(cfg, "person_check_on", False):
                scores = checked_scores(scores, model.person_check(c4).sigmoid(), cut_by_bottom(boxes, height))
        if not self.detectron2:  # the head ruler, the facing and the skeleton, as the eager model weighs them
            fine = model.settle_charts(maps["coarse_segm"], maps["fine_segm"], p_camera, skeleton)
            maps = {**maps, "fine_segm": fine, **settle_uv(model, maps["u"], maps["v"], skeleton)}
        covered, wider = getattr(cfg, "drop_covered_fraction", 0.0), getattr(cfg, "drop_wider_iou", 0.0)
        if getattr(cfg, "person_check_on", False) or covered > 0 or wider > 0:
            # The eager model drops these rows before its heads (and its facing people heads) run;
            # the graph runs them on all rows (one batch) and drops them here: the same outputs.
            scores, kept = demote_repeated(boxes, scores, covered, wider, getattr(cfg, "repeated_score_fraction", 0.0))
            keep = (scores > cfg.score_thresh_test) & kept
            refined, scores, maps = refined[keep], scores[keep], {k: v[keep] for k, v in maps.items()}
        return refined, scores, maps

    def _crop_features(self, x: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor | None]:
        """Normalised padded image (1, 3, h, w), boxes (N, 4) -> the (N, 112, 12, 6) C4 features of
        the people's crops and their crops for the people heads (None without), as
        `DensePoseRCNN.facing_crops` cuts them (here by the graph's RoIAlign op)."""
        model = self.model
        image = to_facing_input(x, model.transform.pixel_mean, model.transform.pixel_std)
        cut = lambda size: torch.ops.densepose_export.roi_align(  # noqa: E731
            image, crop_boxes(boxes), *size, 1.0, CROP_SAMPLING_RATIO, True)
        return model.facing.features(cut(FACING_CROP)), (cut(PEOPLE_CROP) if model.facing.people is not None else None)

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        """(3, H, W) RGB 0..255 (uint8 or float) -> the outputs named in ``output_names`` (module docstring)."""
        height, width = image.shape[-2], image.shape[-1]
        new_h, new_w, scale = self._test_size(height, width)
        # Antialiased bilinear = the eager rule (antialias when shrinking; when enlarging both are equal).
        x = F.interpolate(image.float()[None], size=(new_h, new_w), mode="bilinear", align_corners=False,
                          antialias=True)[0]
        boxes, scores, maps = self._detect(x)
        boxes = clip_boxes(boxes / scale.to(boxes.dtype), height, width)
        if self.grows:
            maps["map_boxes"] = clip_boxes(maps["map_boxes"] / scale.to(boxes.dtype), height, width)
        labels, u, v = labels_uv(maps["coarse_segm"], maps["fine_segm"], maps["u"], maps["v"])
        outputs = [boxes, scores, labels, u, v, *[maps[name] for name in self.output_names[5:]]]
        if self.detectron2:  # detectron2 models drop boxes that became empty in input pixels
            keep = nonempty(boxes)
            outputs = [out[keep] for out in outputs]
        return tuple(outputs)


def labels_uv(coarse_segm: Tensor, fine_segm: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Head maps at S x S -> labels (N, S, S) uint8 0..24, U, V (N, S, S) float in [0, 1] (0 on background).

    The official rule of `densepose.modeling.postprocess.densepose_to_labels_uv` without the resize
    to the box: ``I = argmax(fine) * (argmax(coarse) > 0)``, U and V from I's channel, clipped."""
    labels = fine_segm.argmax(1) * (coarse_segm.argmax(1) > 0)
    foreground = (labels > 0).to(u.dtype)
    index = labels[:, None]
    uu = u.gather(1, index)[:, 0].clamp(0, 1) * foreground
    vv = v.gather(1, index)[:, 0].clamp(0, 1) * foreground
    return labels.to(torch.uint8), uu, vv


def example_image(model: nn.Module) -> Tensor:
    """A (3, H, W) image at the model's test size (landscape 4:3), used to trace the graph."""
    short = model.cfg.min_size_test
    return torch.rand(3, short, min(model.cfg.max_size, short * 4 // 3), generator=torch.Generator().manual_seed(0)) * 255


def export_graph(model: nn.Module, out: str | os.PathLike, fmt: str, example: Tensor | None = None) -> list[str]:
    """Write ``model``'s `ExportPipeline` as TorchScript or ONNX to ``out``; returns the output names."""
    if fmt not in FORMATS:
        raise UserError(f"export: format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    cfg = getattr(model, "cfg", None)  # None: a module without a ModelConfig, which has none of these steps
    extra = getattr(cfg, "extra_test_sizes", ())
    if extra:
        log.warning("export: the graph tests at shorter side %d only; the model's extra test sizes %s "
                    "(merged in `densepose predict`) are not part of it", cfg.min_size_test, list(extra))
    if getattr(cfg, "dp_zoom_size", 0):
        log.warning("export: the graph reads every person at the test size; the model's small people read at "
                    "%d (`densepose predict`) are not part of it", cfg.dp_zoom_size)
    if getattr(cfg, "guided_radius", 0):
        log.warning("export: the graph gives each person's maps as the head draws them; the model's silhouettes "
                    "moved onto the photo's edges (guided_radius %d, `densepose predict`) are not part of it",
                    cfg.guided_radius)
    if getattr(cfg, "dense_score_on", False):
        log.warning("export: the graph gives the detection scores; the model's dense scores, which rank people by "
                    "their maps in `densepose predict --json` (dense_score_on), are not part of it")
    pipeline = ExportPipeline(model.float().eval()).eval()
    example = example_image(model) if example is None else example
    out = Path(out)
    with torch.no_grad():
        if fmt == "torchscript":
            graph = torch.jit.trace(pipeline, (example,), check_trace=False, strict=False)
            torch.jit.save(graph, str(out))
        else:
            try:
                program = torch.onnx.export(
                    pipeline, (example,), dynamo=True, input_names=["image"], output_names=pipeline.output_names,
                    dynamic_shapes=({1: torch.export.Dim("height", min=32, max=4096),
                                     2: torch.export.Dim("width", min=32, max=4096)},),
                    custom_translation_table=export_ops.onnx_translations(), verbose=False)
            except ImportError as exc:
                raise UserError(f"export: ONNX needs the onnx and onnxscript packages ({exc}); "
                                "pip install 'densepose[onnx]'") from None
            program.save(str(out))
    return pipeline.output_names


def export_model_graph(path: str | os.PathLike, out: str | os.PathLike, fmt: str) -> list[str]:
    """`export_graph` of the model file (ours, or a detectron2 model-zoo file) at ``path``."""
    from densepose.modeling.model_file import load_model_file

    if fmt not in FORMATS:
        raise UserError(f"export: format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return export_graph(load_model_file(path), out, fmt)
