"""``DensePoseRCNN``: backbone + FPN, RPN, box head, optional mask / keypoint heads, DensePose head.

I/O contract (docs/ARCHITECTURE.md): input a list of (3, H, W) float RGB tensors in 0..255; the
model resizes (shorter side ``min_size``, longer <= ``max_size``), normalises with ImageNet mean/std
and pads to a multiple of 32 itself (`densepose.modeling.transform.RCNNTransform`). In eval, images
are run in groups of equal padded size, so a batch gives every image its one-at-a-time answer.
Training returns a dict of scalar losses; eval returns per image ``boxes`` (N, 4) xyxy in input
pixels (voted by the boxes around them when ``box_vote_iou`` is set), ``scores`` (N,) (lowered by
the person check when ``person_check_on``), ``coarse_segm`` (N, 2, 112, 112),
``fine_segm``/``u``/``v`` (N, 25, 112, 112), ``masks`` (N, 1, 28, 28) probabilities /
``keypoints`` (N, 17, 3) (x, y, score) in input pixels / ``facing`` (N,) when those heads are on,
and ``dp_boxes`` (N, 4), the grown boxes the DensePose maps cover, when ``dp_margin_x`` /
``dp_margin_y`` are set (else the maps cover ``boxes``).
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from densepose.modeling.backbone import Backbone, load_backbone_weights
from densepose.modeling.box_passes import read_boxes
from densepose.modeling.config import ModelConfig
from densepose.modeling.densepose_head import (
    CascadeFusion,
    Decoder,
    DensePoseHead,
    DensePosePredictor,
    densepose_losses,
    densepose_rois,
)
from densepose.modeling.ops import MultiScaleRoIAlign, clip_boxes, grow_boxes
from densepose.modeling.roi_heads import (
    BoxHead,
    Detected,
    KeypointHead,
    MaskHead,
    box_inference,
    box_losses,
    heatmaps_to_keypoints,
    keypoint_head_loss,
    mask_loss,
    sample_proposals,
)
from densepose.modeling.flip_test import average_outputs, mirror_boxes, mirror_images, unmirror_outputs
from densepose.modeling.facing import (FACING_CROP, RATIO_COLUMNS, FacingClassifier, person_crops, to_facing_input)
from densepose.modeling.movenet import MoveNetKeypoints
from densepose.modeling.second_look import second_look, settle_charts, settle_uv
from densepose.modeling.head_ruler import RULER_BINS
from densepose.modeling.skeleton_prior import SKELETON_BINS, Skeleton, on_map
from densepose.modeling.skeleton_uv import UV_BINS
from densepose.modeling.person_check import person_check_head
from densepose.modeling.group_boxes import group_boxes
from densepose.modeling.multiscale import gather_merged, select_across_sizes, within_size_range
from densepose.modeling.rpn import RPN
from densepose.modeling.transform import ImageBatch, RCNNTransform, boxes_to_input
from densepose.modeling.zoom import (SMALL_FLIP_TABLE, Zoom, flip_small_people, zoom_batch, zoom_padding_groups,
                                     zoomed_roi_features)

DP_OUTPUT_KEYS = ("coarse_segm", "fine_segm", "u", "v")


def _rows_where(dets: list[Detected], keep: Callable[[Tensor, Tensor], Tensor]) -> list[Detected]:
    """Per image `Detected` -> the rows where ``keep(boxes, scores)`` (N,) bool is True."""
    return [d.rows(keep(d.boxes, d.scores)) for d in dets]


class _SizeRun(NamedTuple):
    """One test size's pass over one padding group of images."""

    group: list[int]  # indices of the images in the batch
    batch: ImageBatch
    feats: list[Tensor] | None  # kept for the largest size only
    dets: list[Detected]  # per image, in resized pixels


class DensePoseRCNN(nn.Module):
    #: ``forward(min_size=...)`` takes a sequence of sizes as well as one (`densepose.predict.Predictor` asks).
    tests_at_several_sizes = True

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg.backbone, cfg.fpn_channels, cfg.norm, cfg.freeze_at, cfg.backbone_width)
        if cfg.backbone_weights:
            load_backbone_weights(self.backbone, cfg.backbone_weights)
        c = cfg.fpn_channels
        strides = self.backbone.strides
        self.rpn = RPN(cfg, c, strides)
        self.transform = RCNNTransform(cfg.min_size_train, cfg.min_size_test, cfg.max_size, cfg.size_divisibility,
                                       cfg.pixel_mean, cfg.pixel_std)
        # Box/mask/keypoint pooling uses P2..P5 (P6 is RPN-only, as in d2).
        self.box_pooler = MultiScaleRoIAlign(cfg.box_pool, strides[:4], 2, aligned=True)
        self.box_head = BoxHead(c, cfg.box_pool, cfg.box_fc_dim)
        if cfg.mask_on:
            self.mask_pooler = MultiScaleRoIAlign(cfg.mask_pool, strides[:4], 2, aligned=True)
            self.mask_head = MaskHead(c, cfg.mask_num_convs, cfg.mask_dim)
        if cfg.keypoint_on:
            self.keypoint_pooler = MultiScaleRoIAlign(cfg.keypoint_pool, strides[:4], 2, aligned=True)
            self.keypoint_head = KeypointHead(c, cfg.num_keypoints, cfg.keypoint_num_convs, cfg.keypoint_dim)
        if cfg.densepose_on:
            self.dp_decoder = Decoder(c, cfg.dp_decoder_conv_dim, cfg.dp_decoder_channels)
            self.dp_pooler = MultiScaleRoIAlign(cfg.dp_pool, (4,), 2, aligned=cfg.dp_pool_aligned)
            self.dp_head = DensePoseHead(cfg.dp_decoder_channels, cfg.dp_num_convs, cfg.dp_dim)
            self.dp_predictor = DensePosePredictor(cfg.dp_dim)
            if cfg.cascade:
                cin = cfg.dp_decoder_channels + cfg.dp_dim + 2 + 3 * 25
                if cfg.mask_on:
                    cin += cfg.mask_dim + 1
                if cfg.keypoint_on:
                    cin += cfg.keypoint_dim + cfg.num_keypoints
                self.cascade_fusion = CascadeFusion(cin, cfg.cascade_dim)
                self.dp_head2 = DensePoseHead(cfg.cascade_dim, cfg.dp_num_convs, cfg.dp_dim)
                self.dp_predictor2 = DensePosePredictor(cfg.dp_dim)
        elif cfg.cascade:
            raise ValueError("cascade needs densepose_on")
        if cfg.facing_on:
            if not cfg.densepose_on:
                raise ValueError("facing_on needs densepose_on")
            self.facing = FacingClassifier(members=cfg.facing_members, people_members=cfg.facing_people_members)\
                .requires_grad_(False)  # trained apart (facing_train)
            # P(chart | facing, box column) / P(chart | box column); set by densepose.engine.facing_train
            self.register_buffer("facing_chart_ratio", torch.ones(2, RATIO_COLUMNS, 25))
        if cfg.head_ruler_on:
            if not cfg.densepose_on:
                raise ValueError("head_ruler_on needs densepose_on")
            # log P(chart | height below the head's top) / P(chart); set by densepose.engine.head_ruler_fit
            self.register_buffer("head_ruler_log_ratio", torch.zeros(RULER_BINS, 25))
        if cfg.skeleton_prior_on:
            if not cfg.facing_people_members:
                raise ValueError("skeleton_prior_on needs the people heads' MoveNet trunk (facing_people_members > 0)")
            # MoveNet's own weights
            self.keypoints = MoveNetKeypoints(cfg.keypoint_own_trunk_from).requires_grad_(False)
            # log P(chart | skeleton bin) / P(chart); set by densepose.engine.skeleton_prior_fit
            self.register_buffer("skeleton_log_ratio", torch.zeros(SKELETON_BINS, 25))
        if cfg.skeleton_own_trunk and not cfg.skeleton_prior_on:
            raise ValueError("skeleton_own_trunk needs skeleton_prior_on (MoveNet's keypoint network)")
        if cfg.skeleton_uv_on:
            if not cfg.skeleton_prior_on:
                raise ValueError("skeleton_uv_on needs skeleton_prior_on (MoveNet's keypoints)")
            # mean U, V and their precision per skeleton U, V bin and chart; set by densepose.engine.skeleton_prior_fit
            self.register_buffer("skeleton_uv_stats", torch.zeros(UV_BINS, 25, 4))
        if cfg.dp_zoom_flip:  # the chart's flip tables, small (`zoom.small_flip_tables`); set by densepose export
            self.register_buffer("zoom_flip_uv", torch.zeros(24, SMALL_FLIP_TABLE, SMALL_FLIP_TABLE, 2))
        if cfg.person_check_on:
            if not cfg.facing_on:
                raise ValueError("person_check_on needs facing_on (it reads the facing classifier's crop features)")
            self.person_check = person_check_head(cfg.person_check_members).requires_grad_(False)  # person_check_train
        # NHWC: ~1.4x faster convolutions on CPU (oneDNN) and on GPU tensor cores; preprocess()
        # hands the network NHWC batches to match.
        self.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ forward

    def preprocess(self, images: list[Tensor], targets: list[dict] | None):
        """Resize, normalise, pad. Returns (batch (N,3,H,W), sizes [(h,w)], scales [(sy,sx)], targets)."""
        b = self.transform(images, targets)
        return b.tensor, b.sizes, b.scales, b.targets

    def forward(
        self,
        images: list[Tensor],
        targets: list[dict] | None = None,
        *,
        min_size: int | Sequence[int] | None = None,
        max_size: int | None = None,
        score_thresh: float | None = None,
        flip_uv: Tensor | None = None,
        dp_zoom_size: int | None = None,
    ):
        """Training: losses. Eval: per-image outputs in input pixels.

        Eval-only overrides (the config is never changed): ``min_size`` / ``max_size`` of the
        resize (explicit sizes are the only ones: the config's ``extra_test_sizes`` are dropped; at
        several sizes the detections are merged as for the config's), and ``score_thresh``
        (replaces ``score_thresh_test``; scores >= it are kept), so low scores are dropped before
        the mask, keypoint and DensePose heads run (their cost grows per box); ``flip_uv``, the
        chart's (24, 256, 256, 2) symmetry tables, turns on the flip test (`densepose.modeling.flip_test`);
        ``dp_zoom_size`` replaces the config's (the DensePose head reads small people at that size,
        `densepose.modeling.zoom`; 0: off).
        """
        if self.training:
            if targets is None:
                raise ValueError("DensePoseRCNN in training mode needs targets")
            batch = self.transform(images, targets)
            feats = self.backbone(batch.tensor)
            gt_boxes = [t["boxes"] for t in batch.targets]
            proposals, losses = self.rpn(feats, batch.sizes, self.cfg, gt_boxes)
            losses.update(self._train_heads(feats, feats[:4], proposals, batch.sizes, batch.targets))
            return losses
        # Explicit sizes are the only ones; the config's default adds its extra test sizes.
        if min_size is None:
            sizes = [None, *self.cfg.extra_test_sizes]
        else:
            sizes = [min_size] if isinstance(min_size, int) else list(min_size)
        zoom_size = self.cfg.dp_zoom_size if dp_zoom_size is None else int(dp_zoom_size)
        if len(sizes) == 1 and not zoom_size:
            infer = lambda b: self._inference(b, score_thresh, flip_uv)  # noqa: E731
            return self.transform.run_in_padding_groups(images, infer, sizes[0], max_size)
        return self._inference_at_sizes(images, sizes, max_size, score_thresh, flip_uv, zoom_size)

    def _dp_features(self, feats: list[Tensor], boxes: list[Tensor]) -> Tensor:
        return self.dp_pooler([self.dp_decoder(feats[:4])], boxes)

    def _dp_forward(self, roi_feat: Tensor, mask_extra, kp_extra):
        """Stage 1 (and stage 2 when cascading) -> list of output dicts, last one is final."""
        h1 = self.dp_head(roi_feat)
        out1 = self.dp_predictor(h1)
        if not self.cfg.cascade:
            return [out1]
        x = CascadeFusion.gather(roi_feat.shape[-1], roi_feat, h1, out1, mask_extra, kp_extra)
        out2 = self.dp_predictor2(self.dp_head2(self.cascade_fusion(x)))
        return [out1, out2]

    def _train_heads(self, feats, fpn4, proposals, sizes, targets) -> dict[str, Tensor]:
        cfg = self.cfg
        losses: dict[str, Tensor] = {}
        gt_boxes = [t["boxes"] for t in targets]
        samples = sample_proposals(proposals, gt_boxes, cfg)
        logits, deltas = self.box_head(self.box_pooler(fpn4, samples.per_image(samples.boxes)))
        losses.update(box_losses(logits, deltas, samples, cfg.box_reg_weights, cfg.box_smooth_l1_beta))

        fg_boxes, fg_gt = samples.fg_per_image(samples.boxes), samples.fg_per_image(samples.gt_index)
        mask_out = kp_out = None
        if cfg.mask_on:
            mask_out = self.mask_head(self.mask_pooler(fpn4, fg_boxes))
            losses["loss_mask"] = mask_loss(mask_out[0], fg_boxes, fg_gt, targets)
        if cfg.keypoint_on:
            kp_out = self.keypoint_head(self.keypoint_pooler(fpn4, fg_boxes))
            losses["loss_keypoint"] = keypoint_head_loss(kp_out[0], fg_boxes, fg_gt, targets) * cfg.keypoint_loss_weight
        if cfg.densepose_on:
            losses.update(self._train_densepose(feats, samples, targets, mask_out, kp_out))
        return losses

    def _train_densepose(self, feats, samples, targets, mask_out, kp_out):
        cfg = self.cfg
        packed, sel_boxes, sel_gt, keep_all = densepose_rois(samples, targets, cfg.dp_fg_iou, cfg.dp_max_rois_per_image)
        roi_feat = self._dp_features(feats, sel_boxes)
        mask_extra = (mask_out[0][keep_all], mask_out[1][keep_all]) if mask_out is not None else None
        kp_extra = (kp_out[0][keep_all], kp_out[1][keep_all]) if kp_out is not None else None
        outs = self._dp_forward(roi_feat, mask_extra, kp_extra)
        boxes, gt_index = torch.cat(sel_boxes), torch.cat(sel_gt)
        losses = {}
        for k, out in enumerate(outs):
            losses.update(densepose_losses(out, boxes, gt_index, packed, cfg.dp_weight_segm, cfg.dp_weight_part,
                                           cfg.dp_weight_uv, cfg.dp_uv_reduction, suffix="" if k == 0 else "_stage2"))
        return losses

    @torch.no_grad()
    def _inference(self, batch: ImageBatch, score_thresh: float | None,
                   flip_uv: Tensor | None = None) -> list[dict[str, Tensor]]:
        feats = self.backbone(batch.tensor)
        dets = self._detect(batch, feats, score_thresh)
        if self.cfg.drop_group_boxes:
            dets = _rows_where(dets, lambda boxes, scores: ~group_boxes(boxes, scores))
        return RCNNTransform.to_input_pixels(self._heads(feats, dets, batch.tensor, batch.sizes, score_thresh, flip_uv),
                                             batch)

    @torch.no_grad()
    def _inference_at_sizes(self, images: list[Tensor], sizes: list[int | None], max_size: int | None,
                            score_thresh: float | None, flip_uv: Tensor | None, zoom_size: int = 0) -> list[dict[str, Tensor]]:
        """Detect at every size, keep the heights each size sees best (`within_size_range`), merge
        each image's detections across sizes (`select_across_sizes`), then run the per-box heads on
        the kept detections only, all on the largest size's features (`densepose.modeling.multiscale`),
        the DensePose head's small people on those of ``zoom_size`` (larger; `densepose.modeling.zoom`)."""
        cfg = self.cfg
        nominal = [cfg.min_size_test if size is None else size for size in sizes]
        largest = max(nominal)
        runs: list[_SizeRun] = []  # one per (size, padding group)
        for size, side in zip(sizes, nominal):
            groups = self.transform.same_padding_groups(images, size, max_size)
            if zoom_size and side == largest:  # the zoomed images of a group must share their padding too
                groups = [sub for g in groups for sub in zoom_padding_groups(self.transform, images, g, largest,
                                                                              zoom_size, max_size)]
            for group in groups:
                batch = self.transform([images[i] for i in group], None, size, max_size)
                feats = self.backbone(batch.tensor)
                dets = _rows_where(self._detect(batch, feats, score_thresh), lambda boxes, _: within_size_range(
                    boxes, side, nominal, cfg.multisize_min_height, cfg.multisize_max_height))
                # Only the largest size's features are read again (by the heads).
                runs.append(_SizeRun(group, batch, feats if side == largest else None, dets))
        entries: list[list[tuple[int, int]]] = [[] for _ in images]  # per image: (run, position in its group)
        for r, run in enumerate(runs):
            for j, i in enumerate(run.group):
                entries[i].append((r, j))
        merged = []  # per image: the kept detections in input pixels, by decreasing detector score
        for image_entries in entries:
            found = []
            for r, j in image_entries:
                det, to_input = runs[r].dets[j], partial(boxes_to_input, scale=runs[r].batch.scales[j],
                                                         input_size=runs[r].batch.input_sizes[j])
                found.append({"boxes": to_input(det.boxes.float()), "scores": det.scores,
                              "refined": to_input(det.refined.float())})
            rows, order = select_across_sizes([f["boxes"] for f in found], [f["scores"] for f in found],
                                              cfg.nms_thresh_test, cfg.detections_per_image, cfg.drop_group_boxes)
            merged.append(gather_merged([{k: v[rows_k] for k, v in f.items()} for f, rows_k in zip(found, rows)], order))
        outputs: list[dict[str, Tensor]] = [{} for _ in images]
        for run in runs:
            if run.feats is None:
                continue
            chosen = []
            for i, (sy, sx) in zip(run.group, run.batch.scales):  # input pixels -> this size's
                scale = merged[i]["boxes"].new_tensor([sx, sy, sx, sy])
                chosen.append(Detected(merged[i]["boxes"] * scale, merged[i]["scores"], merged[i]["refined"] * scale))
            zoom = zoom_batch(self.transform, self.backbone, [images[i] for i in run.group], run.batch, largest,
                              zoom_size, max_size, cfg.dp_zoom_max_height) if zoom_size else None
            heads = self._heads(run.feats, chosen, run.batch.tensor, run.batch.sizes, score_thresh, flip_uv, zoom)
            for i, out in zip(run.group, RCNNTransform.to_input_pixels(heads, run.batch)):
                outputs[i] = out
        return outputs

    def _mirrored_densepose(self, images: Tensor, sizes: Sequence[tuple[int, int]], boxes: list[Tensor],
                            dp_boxes: list[Tensor], zoom: Zoom | None = None) -> dict[str, Tensor]:
        """The final DensePose outputs (K = sum K_i rows) for the mirror images of ``images``, of the
        per-image detection ``boxes`` (K_i, 4) (read by the mask and keypoint heads) and of the
        ``dp_boxes`` the DensePose head reads, as they come (`flip_test.unmirror_outputs` reads them)."""
        feats = self.backbone(mirror_images(images, sizes))
        boxes, dp_boxes = ([mirror_boxes(b, w) for b, (_, w) in zip(bs, sizes)] for bs in (boxes, dp_boxes))
        mask_extra = self.mask_head(self.mask_pooler(feats[:4], boxes)) if self.cfg.mask_on else None
        kp_extra = self.keypoint_head(self.keypoint_pooler(feats[:4], boxes)) if self.cfg.keypoint_on else None
        heights = [b[:, 3] - b[:, 1] for b in boxes]
        roi_feat = zoomed_roi_features(self._dp_features, feats, dp_boxes, heights, zoom and zoom.mirrored())
        return self._dp_forward(roi_feat, mask_extra, kp_extra)[-1]

    def facing_input(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) normalised images -> float32, in the facing classifier's normalisation
        (`densepose.modeling.facing.to_facing_input`), which `facing_crops` cuts from."""
        return to_facing_input(images.float(), self.transform.pixel_mean, self.transform.pixel_std)

    def facing_crops(self, facing_input: Tensor, boxes: list[Tensor], dtype: torch.dtype,
                     size: tuple[int, int] = FACING_CROP) -> Tensor:
        """(B, 3, H, W) images from `facing_input`, per-image boxes (K_i, 4) -> the people's (sum
        K_i, 3, *size) crops (``FACING_CROP`` for the classifier's Lite0 trunk, ``PEOPLE_CROP``
        for its people heads), in ``dtype`` (the images')."""
        return person_crops(facing_input, boxes, size).contiguous(memory_format=torch.channels_last).to(dtype)

    def settle_charts(self, coarse_segm: Tensor, fine_segm: Tensor, p_camera: Tensor | None,
                      skeleton: Skeleton | None = None) -> Tensor:
        """`densepose.modeling.second_look.settle_charts` with this model's ratios and powers."""
        return settle_charts(self, coarse_segm, fine_segm, p_camera, skeleton)

    def _detect(self, batch: ImageBatch, feats: list[Tensor], score_thresh: float | None) -> list[Detected]:
        """RPN + box head: per image `Detected` in resized pixels, NMS'd, by score."""
        cfg = self.cfg
        proposals, _ = self.rpn(feats, batch.sizes, cfg)
        scores, boxes = read_boxes(lambda per_image: self.box_head(self.box_pooler(feats[:4], per_image)), proposals,
                                   batch.sizes, cfg.box_reg_weights, cfg.box_head_passes, cfg.box_again_min_score)
        # box_inference keeps scores > min_score; scores >= score_thresh are asked for.
        min_score = None if score_thresh is None else math.nextafter(float(score_thresh), -math.inf)
        return box_inference(scores, boxes, cfg, min_score)

    def _heads(self, feats: list[Tensor], dets: list[Detected], images: Tensor,
               sizes: Sequence[tuple[int, int]], score_thresh: float | None = None,
               flip_uv: Tensor | None = None, zoom: Zoom | None = None) -> list[dict[str, Tensor]]:
        """The facing classifier and person check (`second_look`), then the mask, keypoint and
        DensePose heads on the detections they keep, of the normalised ``images`` (B, 3, H, W),
        whose unpadded (h, w) are ``sizes`` -> per-image outputs in resized pixels; with
        ``flip_uv``, the DensePose outputs are averaged with those on the mirrored images; with
        ``zoom``, the DensePose head reads its small people from the zoomed images."""
        cfg = self.cfg
        fpn4 = feats[:4]
        dets, p_camera, keypoints = second_look(self, dets, images, sizes, score_thresh)
        boxes = [d.refined for d in dets]
        counts = [b.shape[0] for b in boxes]
        results = [{"boxes": d.refined, "scores": d.scores} for d in dets]
        mask_extra = kp_extra = None
        if cfg.mask_on:
            logits_m, feat_m = self.mask_head(self.mask_pooler(fpn4, boxes))
            mask_extra = (logits_m, feat_m)
            for r, m in zip(results, logits_m.sigmoid().split(counts)):
                r["masks"] = m
        if cfg.keypoint_on:
            heat, feat_k = self.keypoint_head(self.keypoint_pooler(fpn4, boxes))
            kp_extra = (heat, feat_k)
            kps = heatmaps_to_keypoints(heat, torch.cat(boxes))
            for r, k in zip(results, kps.split(counts)):
                r["keypoints"] = k
        if cfg.densepose_on:
            if cfg.dp_margin_x > 0 or cfg.dp_margin_y > 0:
                boxes = [clip_boxes(grow_boxes(b, cfg.dp_margin_x, cfg.dp_margin_y), h, w) for b, (h, w) in zip(boxes, sizes)]
                for r, b in zip(results, boxes):
                    r["dp_boxes"] = b
            if sum(counts):
                heights = [r["boxes"][:, 3] - r["boxes"][:, 1] for r in results]
                roi_feat = zoomed_roi_features(self._dp_features, feats, boxes, heights, zoom)
            else:  # nobody to pool for: skip the stride-4 decoder, the heads give empty outputs
                roi_feat = feats[0].new_zeros((0, cfg.dp_decoder_channels, cfg.dp_pool, cfg.dp_pool))
            out = self._dp_forward(roi_feat, mask_extra, kp_extra)[-1]
            if flip_uv is not None and sum(counts):
                mirrored = self._mirrored_densepose(images, sizes, [r["boxes"] for r in results], boxes, zoom)
                out = average_outputs(out, unmirror_outputs(mirrored, flip_uv))
            elif zoom is not None and cfg.dp_zoom_flip and sum(counts):
                out = flip_small_people(out, lambda f: self._dp_forward(f, None, None)[-1], self._dp_features, boxes,
                                        heights, zoom, self.zoom_flip_uv)
            skeleton = None  # with the prior: the maps' nearest bones, found once for both priors
            if keypoints is not None:
                skeleton = on_map(Skeleton(*keypoints, torch.cat(boxes).float()), out["fine_segm"].shape[-1])
            out = {**out, "fine_segm": self.settle_charts(out["coarse_segm"], out["fine_segm"], p_camera, skeleton)}
            out = {**out, **settle_uv(self, out["u"], out["v"], skeleton)}
            if p_camera is not None:
                for r, p in zip(results, p_camera.split(counts)):
                    r["facing"] = p
            for key in DP_OUTPUT_KEYS:
                for r, o in zip(results, out[key].split(counts)):
                    r[key] = o
        return results
