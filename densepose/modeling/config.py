"""``ModelConfig``: every knob of DensePose-RCNN in one flat dataclass, plus two presets."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from densepose.errors import UserError


@dataclass
class ModelConfig:
    # Backbone
    # resnet18 | resnet34 | resnet50 | resnet101 | efficientnet_lite0 | mobilenet_v2_x1_0 | _x1_5 | _x1_75
    backbone: str = "resnet50"
    backbone_width: int = 64  # stem channels; < 64 only for tiny test/CPU models
    norm: str = "frozen_bn"  # frozen_bn (pretrained, reference) | bn | gn (from scratch)
    freeze_at: int = 2  # 0 none, 1 stem, 2 stem + res2 (reference)
    # torchvision / detectron2 ResNet file, EfficientNet-PyTorch Lite0 file, "imagenet" for the
    # Lite0 weights of the densepose[train] extra, or a MoveNet TF.js model.json for a MobileNetV2
    # (see backbone.py). Only read when the model is built for training: a model file carries all
    # its weights.
    backbone_weights: str | None = None
    fpn_channels: int = 256
    # Input (the model resizes and normalises itself)
    min_size_train: tuple[int, ...] = (640, 672, 704, 736, 768, 800)
    min_size_test: int = 800
    # Further shorter sides the test also runs at; detections of all sizes are merged by NMS
    # (`densepose.modeling.multiscale`). Empty: one size.
    extra_test_sizes: tuple[int, ...] = ()
    # With several test sizes, each keeps the people it sees best (`multiscale.within_size_range`):
    # every size but the smallest keeps boxes at most multisize_max_height tall in its own pixels,
    # every size but the largest boxes at least multisize_min_height tall. 0: no bound.
    multisize_min_height: float = 0.0
    multisize_max_height: float = 0.0
    max_size: int = 1333
    size_divisibility: int = 32
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)  # ImageNet RGB, 0..255
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    # RPN
    anchor_sizes: tuple[float, ...] = (32, 64, 128, 256, 512)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_fg_iou: float = 0.7
    rpn_bg_iou: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_pre_nms_topk_train: int = 2000  # per level
    rpn_pre_nms_topk_test: int = 1000
    rpn_post_nms_topk_train: int = 1000  # per image
    rpn_post_nms_topk_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_smooth_l1_beta: float = 0.0
    # Box head (person vs background)
    roi_fg_iou: float = 0.5
    roi_batch_size_per_image: int = 512
    roi_positive_fraction: float = 0.25
    box_pool: int = 7
    box_fc_dim: int = 1024
    box_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    box_smooth_l1_beta: float = 0.0
    score_thresh_test: float = 0.05
    # `predict`, `demo` and `densepose.load()` keep people from this score unless told another
    # (--min-score); a property of the model, whose scores are calibrated as its training made them.
    default_min_score: float = 0.5
    nms_thresh_test: float = 0.5
    # Box voting at test time (`ops.vote_boxes`): each box NMS keeps becomes the score-weighted mean
    # of the boxes (scores > score_thresh_test) that overlap it by at least this IoU. 0: off.
    box_vote_iou: float = 0.0
    detections_per_image: int = 100
    # How many times the box head reads each box at test time (`densepose.modeling.box_passes`): 2
    # reads it again at the box it regressed, the passes' boxes and scores averaged; 1: once. Rows
    # scoring under box_again_min_score after the first read are read once.
    box_head_passes: int = 1
    box_again_min_score: float = 0.0
    # Drop detections that box two people side by side (`densepose.modeling.group_boxes`).
    drop_group_boxes: bool = False
    # Drop detections of which at least this fraction lies inside more confident detections (scores
    # >= 0.5; `densepose.modeling.covered_boxes`), after the person check. 0: off.
    drop_covered_fraction: float = 0.0
    # Drop detections at least 1.5x the area of a more confident one (score >= 0.5) that they overlap
    # by at least this IoU: a box around a person and half their neighbour (`covered_boxes`). 0: off.
    drop_wider_iou: float = 0.0
    # The two rules above lower a detection's score to this fraction of it instead of dropping it
    # (`covered_boxes.demote_repeated`): kept for ranked lists, under default_min_score. 0: dropped.
    repeated_score_fraction: float = 0.0
    # Mask head
    mask_on: bool = False
    mask_pool: int = 14
    mask_num_convs: int = 4
    mask_dim: int = 256
    # Keypoint head
    keypoint_on: bool = False
    num_keypoints: int = 17
    keypoint_pool: int = 14
    keypoint_num_convs: int = 8
    keypoint_dim: int = 512
    keypoint_loss_weight: float = 1.0
    # DensePose head
    densepose_on: bool = True
    dp_decoder_conv_dim: int = 256
    dp_decoder_channels: int = 256
    dp_pool: int = 28  # RoIAlign size; heatmaps are 4x this (112)
    # At test time the DensePose head reads each detection's box grown by these fractions of its
    # width (each side) and height (top and bottom), clipped to the image: detectors box people
    # tightly and leave out hands and arms that the head can label. Outputs ``dp_boxes``.
    dp_margin_x: float = 0.0
    dp_margin_y: float = 0.0
    # At test time the DensePose head reads the people shorter than dp_zoom_max_height (pixels at
    # the largest test size) from the image resized to shorter side dp_zoom_size, when that is
    # larger (densepose.modeling.zoom): finer maps of small people for one more trunk pass. 0: off.
    dp_zoom_size: int = 0
    dp_zoom_max_height: float = 128.0
    # The flip test for the people read at dp_zoom_size alone (`densepose.modeling.zoom.flip_small_people`):
    # each is read again in the mirror image of its crop, the two answers averaged; the model then
    # carries small flip tables (`zoom_flip_uv`). Not with cascade.
    dp_zoom_flip: bool = False
    dp_pool_aligned: bool = False  # reference POOLER_TYPE ROIAlign (not V2)
    dp_num_convs: int = 8
    dp_dim: int = 512
    dp_fg_iou: float = 0.7
    # Random subset of the proposals above dp_fg_iou per image (0 = all, the reference). The head
    # runs at 28x28 per RoI, so on a CPU the RoI count, not the image, sets the training step time.
    dp_max_rois_per_image: int = 0
    dp_weight_segm: float = 5.0  # S (INDEX_WEIGHTS)
    dp_weight_part: float = 1.0  # I (PART_WEIGHTS)
    dp_weight_uv: float = 0.01  # U, V (POINT_REGRESSION_WEIGHTS)
    dp_uv_reduction: str = "sum"  # reference; "mean" normalises by the number of points
    # Cross-cascading (paper Fig. 7): second DensePose stage fed with stage-1 + mask + keypoint outputs
    cascade: bool = False
    cascade_dim: int = 256
    # Facing classifier (`densepose.modeling.facing`): reweights the charts by which way each person faces
    facing_on: bool = False
    # Its chart weights raised to this power (`facing.reweight_charts`): 1 is Bayes' rule with the
    # measured ratios; above 1 the facing settles front against back, left against right, more firmly.
    facing_power: float = 1.0
    # Heads of the facing classifier whose logits are averaged (densepose add-facing-heads adds them)
    facing_members: int = 1
    # Heads on a people-trained crop trunk (MoveNet Lightning's, `densepose.modeling.facing_people`);
    # their mean logit is averaged with the heads above (densepose train-facing --movenet-trunk); 0: none
    facing_people_members: int = 0
    # Head ruler (`densepose.modeling.head_ruler`): the charts weighed by each row's height below
    # the top of the person's head, with ratios counted on renders (densepose add-head-ruler)
    head_ruler_on: bool = False
    # The ruler's log ratios are multiplied by this: 1 is Bayes' rule, above 1 the ruler settles more
    head_ruler_power: float = 1.0
    # Skeleton prior (`densepose.modeling.skeleton_prior`): the charts weighed by the bone of MoveNet's
    # keypoints nearest each pixel, with ratios counted on renders (densepose add-skeleton-prior;
    # needs the people heads' MoveNet trunk: facing_people_members > 0)
    skeleton_prior_on: bool = False
    # MoveNet's keypoint network has its own copy of the people trunk's blocks from
    # skeleton_own_trunk_from (3 or 6) to 12, trained with it on the renders' keypoints, while the
    # facing heads read the trunk's own (densepose train-keypoints --own-trunk; needs skeleton_prior_on)
    skeleton_own_trunk: bool = False
    skeleton_own_trunk_from: int = 6
    # The prior's log ratios are multiplied by this
    skeleton_prior_power: float = 1.0
    # U, V from the skeleton (`densepose.modeling.skeleton_uv`): each chart's U and V moved towards
    # the means of the truth by MoveNet's nearest bone, counted on renders (densepose
    # add-skeleton-prior; needs skeleton_prior_on)
    skeleton_uv_on: bool = False
    # The variance of the DensePose head's own U, V error: larger trusts the bones' means more
    skeleton_uv_variance: float = 0.02
    # Person check (`densepose.modeling.person_check`): a detection's score becomes score x
    # sqrt(P(one whole person)), read from the facing classifier's crop features (needs facing_on)
    person_check_on: bool = False
    # How many heads the check averages (`person_check.PersonCheckEnsemble`; 1: one head)
    person_check_members: int = 1
    # Silhouettes moved onto the image's edges (`densepose.modeling.guided_silhouette`): each
    # person's body mask filtered with the image as guide over windows of this half-size, in pixels
    # of the image as the model reads it (0: off); the body is where it reaches guided_threshold
    guided_radius: int = 0
    # The filter's regularisation, in squared colour steps (colours 0..1): smaller follows fainter edges
    guided_eps: float = 0.001
    guided_threshold: float = 0.5
    # People ranked by their maps (`densepose.modeling.dense_score`): the COCO results' score is the
    # detection score times the DensePose head's certainty of its maps; box AP keeps the detection score
    dense_score_on: bool = False
    # Chart probabilities averaged over this many cells square of the 112 x 112 map before each
    # pixel's chart is chosen (`densepose.modeling.chart_smoothing`; odd; 0: off)
    chart_smoothing: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):  # YAML/JSON give lists; keep tuples so configs compare and hash
            v = getattr(self, f.name)
            if isinstance(v, list):
                setattr(self, f.name, tuple(v))
        if self.dp_uv_reduction not in ("sum", "mean"):
            raise UserError(f"model config: dp_uv_reduction must be 'sum' or 'mean', not {self.dp_uv_reduction!r}")
        if self.chart_smoothing < 0 or (self.chart_smoothing > 1 and self.chart_smoothing % 2 == 0):
            raise UserError(f"model config: chart_smoothing must be 0 or an odd window, not {self.chart_smoothing!r}")
        if self.dp_zoom_flip and self.cascade:
            raise UserError("model config: dp_zoom_flip reads the DensePose head alone; it does not run with cascade")
        if self.norm not in ("frozen_bn", "bn", "gn"):
            raise UserError(f"model config: norm must be frozen_bn, bn or gn, not {self.norm!r}")

    @property
    def keypoint_own_trunk_from(self) -> int | None:
        """The first people-trunk block the keypoint network has its own copy of; None: no copy."""
        return self.skeleton_own_trunk_from if self.skeleton_own_trunk else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"model config: unknown key {unknown[0]!r}")
        return cls(**d)


def r50_fpn_config(**overrides) -> ModelConfig:
    """The reference: R-50-FPN, FrozenBN, freeze_at 2, DP head 8 x 512, 640-800 / 1333 input.

    FrozenBN needs ImageNet weights (``backbone_weights=...``): a randomly initialised R-50 without
    normalisation overflows. To train from scratch pass ``norm="gn", freeze_at=0``.
    """
    return ModelConfig(**overrides)


def light_config(**overrides) -> ModelConfig:
    """Fast on CPU (the bundled model): ResNet-18 at half width, FPN-64, DP head 4 x 128, shorter side 512.

    GroupNorm from scratch (no pretrained weights are reachable here). The widths were picked for
    the CPU budget of ``densepose predict`` (<= 150 ms per image at shorter side 512 on 2 cores;
    ``benchmarks/bench_predict.py``); at full width (``backbone_width=64, fpn_channels=128``) the
    forward pass alone costs ~3x more. With ImageNet weights (``backbone_weights=...``) use
    ``backbone_width=64, norm="frozen_bn", freeze_at=2``.
    """
    base = dict(
        backbone="resnet18", backbone_width=32, norm="gn", freeze_at=0, fpn_channels=64,
        min_size_train=(384, 416, 448, 480, 512, 544, 576), min_size_test=512, max_size=853,
        rpn_pre_nms_topk_train=1000, rpn_pre_nms_topk_test=300,
        rpn_post_nms_topk_train=500, rpn_post_nms_topk_test=100,
        roi_batch_size_per_image=128, box_fc_dim=256,
        mask_dim=64, keypoint_dim=128, keypoint_num_convs=4,
        dp_decoder_conv_dim=64, dp_decoder_channels=64, dp_num_convs=4, dp_dim=128, cascade_dim=64,
        dp_max_rois_per_image=16, detections_per_image=50,
    )
    base.update(overrides)
    return ModelConfig(**base)


def efficientnet_lite_config(**overrides) -> ModelConfig:
    """``light_config`` with an ImageNet EfficientNet-Lite0 trunk (frozen BN, stem + C2 frozen).

    Input normalisation is Lite0's (mean 127, std 128). The ImageNet weights come from the
    ``densepose[train]`` extra (``backbone_weights="imagenet"``); ``backbone_weights=None,
    norm="gn", freeze_at=0`` gives the same network from scratch (the init comparison of MODELS.md).
    """
    base = dict(
        backbone="efficientnet_lite0", norm="frozen_bn", freeze_at=2, backbone_weights="imagenet",
        pixel_mean=(127.0, 127.0, 127.0), pixel_std=(128.0, 128.0, 128.0),
    )
    base.update(overrides)
    return light_config(**base)


def tiny_config(**overrides) -> ModelConfig:
    """For tests only: a ResNet-18 at 1/4 width, FPN-32, 2 x 64 DP head, 128 px input."""
    base = dict(
        backbone="resnet18", backbone_width=16, norm="gn", freeze_at=0, fpn_channels=32,
        min_size_train=(128,), min_size_test=128, max_size=256,
        anchor_sizes=(16, 32, 64, 128, 256),
        rpn_pre_nms_topk_train=300, rpn_pre_nms_topk_test=200,
        rpn_post_nms_topk_train=100, rpn_post_nms_topk_test=50,
        rpn_batch_size_per_image=64, roi_batch_size_per_image=64, box_fc_dim=64,
        mask_num_convs=1, mask_dim=32, keypoint_num_convs=1, keypoint_dim=32,
        dp_decoder_conv_dim=32, dp_decoder_channels=32, dp_num_convs=2, dp_dim=64, cascade_dim=32,
        detections_per_image=20,
    )
    base.update(overrides)
    return ModelConfig(**base)
