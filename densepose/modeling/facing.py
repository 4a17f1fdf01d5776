"""Which way a person faces, and the charts that follow from it.

A chart names a side of the body (torso front or back, upper leg right front or left back, ...).
At one place in the image a person facing the camera shows chart c where the same person turned
around shows ``CHART_TURN[c]``, so the DensePose head, which sees a small patch of the person,
has to know the person's facing to choose between them; trained on renders, ours does not
(MODELS.md, "Which way people face"). This module adds that knowledge from a separate look at
the person:

* `FacingClassifier`: the person's box cut out of the image at ``FACING_CROP`` pixels, read by
  the first stages of an ImageNet EfficientNet-Lite0 (to C4, stride 16: features that know
  faces, hair and shoes) and a small head -> the logit of "facing the camera" (the share of the
  torso's points on its front; 0.5 for a person seen from the side); optionally averaged with
  heads on a people-trained trunk reading a larger crop (`densepose.modeling.facing_people`).
* `reweight_charts`: Bayes' rule on the head's chart probabilities (its logits' softmax). With ``p`` the probability
  of facing the camera and ``ratio[k, b, c] = P(chart c | facing k, column b) / P(chart c |
  column b)`` measured on the training data (k = 0 away, 1 camera; b one of ``RATIO_COLUMNS``
  equal columns of the box, so that the person's left and right fall on the side of the image
  their facing puts them), each chart's probability is multiplied by
  ``p * ratio[1, b, c] + (1 - p) * ratio[0, b, c]`` and the charts renormalised to their old
  total: the silhouette stays, a torso pixel the head found 60/40 back/front becomes mostly
  front when the person faces the camera, and the head's left half its right side. The weights
  can be raised to a power (``ModelConfig.facing_power``): above 1 the facing settles the charts
  more firmly than Bayes' rule with the measured ratios, which helps a head that, trained on
  renders, hedges between a chart and its turned-around partner (MODELS.md).

`densepose.engine.facing_train` trains the head and measures the ratios; ``ModelConfig.facing_on``
puts both in a model file.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from densepose.modeling.efficientnet_lite import BN_EPS, LITE0_OUT_BLOCKS, EfficientNetLite
from densepose.modeling.facing_people import PeopleFacing
from densepose.modeling.ops.roi_align import boxes_to_rois, roi_align

#: (height, width) of the person crop the classifier reads.
FACING_CROP = (192, 96)
#: Crops are cut with this much margin around the box (fraction of its height and width).
CROP_MARGIN = 0.1
#: RoIAlign samples per crop pixel and axis (the eager model and the exported graph cut alike).
CROP_SAMPLING_RATIO = 2
#: The classifier's input normalisation (EfficientNet-Lite's: RGB 0..255 -> about -1..1).
FACING_MEAN = 127.0
FACING_STD = 128.0
#: Channels of the crop's C4 features (Lite0's stage 4), read by the facing and person-check heads.
C4_CHANNELS = 112
#: Columns of the box over which the chart ratios are counted.
RATIO_COLUMNS = 8


def crop_boxes(boxes: Tensor) -> Tensor:
    """(N, 4) xyxy person boxes -> (N, 4) crop boxes: the box with ``CROP_MARGIN``, widened or
    heightened about its centre to the crop's aspect (height = 2 x width)."""
    aspect = FACING_CROP[0] / FACING_CROP[1]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    w = (boxes[:, 2] - boxes[:, 0]) * (1 + CROP_MARGIN)
    h = (boxes[:, 3] - boxes[:, 1]) * (1 + CROP_MARGIN)
    w = torch.maximum(w, h / aspect)
    h = torch.maximum(h, w * aspect)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)


def person_crops(images: Tensor, boxes: list[Tensor], size: tuple[int, int] = FACING_CROP) -> Tensor:
    """Cut people out of images for the classifier (at ``size``, of ``FACING_CROP``'s aspect).

    Args:
        images: (B, 3, H, W) RGB already in the classifier's normalisation (``FACING_MEAN``/``STD``).
        boxes: per image (K_i, 4) xyxy in those images' pixels.

    Returns:
        (sum K_i, 3, *size); outside the image the crop is 0 (mid grey).
    """
    rois = boxes_to_rois([crop_boxes(b.float()) for b in boxes]).to(images.dtype)
    return roi_align(images, rois, size, spatial_scale=1.0, sampling_ratio=CROP_SAMPLING_RATIO, aligned=True)


def image_person_crops(image: Tensor, boxes: Tensor, size: tuple[int, int] = FACING_CROP) -> Tensor:
    """(3, H, W) RGB 0..255 of one image and its (K, 4) xyxy boxes -> (K, 3, *size) crops in the
    classifier's normalisation (`person_crops`): the trainers' way in from a decoded image."""
    return person_crops(((image.float() - FACING_MEAN) / FACING_STD)[None], [boxes.float()], size)


def facing_head(head_dim: int = 64, in_channels: int = C4_CHANNELS,
                crop: tuple[int, int] = FACING_CROP) -> nn.Sequential:
    """(N, in_channels, H / 16, W / 16) C4 features of (H, W) ``crop``s (12 x 6 for ``FACING_CROP``)
    -> (N, 1) logits: two 3x3 convolutions (the second stride 2) and a linear layer on the result."""
    h, w = crop[0] // 32, crop[1] // 32
    return nn.Sequential(
        nn.Conv2d(in_channels, head_dim, 3, padding=1), nn.BatchNorm2d(head_dim), nn.ReLU(inplace=True),
        nn.Conv2d(head_dim, head_dim, 3, padding=1, stride=2), nn.BatchNorm2d(head_dim), nn.ReLU(inplace=True),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(head_dim * h * w, 1),
    )


class FacingClassifier(nn.Module):
    """forward (N, 3, *FACING_CROP) crops (`person_crops`) -> (N,) logits of facing the camera.

    ``trunk``: the Lite0 stem and blocks up to C4 (700 k parameters, ImageNet weights, kept fixed
    in training); ``head``: a `facing_head`; ``more_heads``: ``members - 1`` more, each trained
    apart on the same features (`densepose add-facing-heads`), their logits averaged with the first's;
    ``people``: with ``people_members`` > 0, a `PeopleFacing` (heads on MoveNet's trunk, reading
    larger crops of the same people), whose mean logit is averaged with that of the Lite0 heads.
    """

    def __init__(self, head_dim: int = 64, members: int = 1, people_members: int = 0):
        super().__init__()
        lite0 = EfficientNetLite(lambda c: nn.BatchNorm2d(c, eps=BN_EPS))
        self.stem = lite0.stem
        self.blocks = nn.ModuleList(lite0.blocks[: LITE0_OUT_BLOCKS[2] + 1])
        self.head = facing_head(head_dim)
        self.more_heads = nn.ModuleList(facing_head(head_dim) for _ in range(members - 1))
        self.people = PeopleFacing(people_members, head_dim) if people_members else None

    def features(self, crops: Tensor) -> Tensor:
        """(N, 3, 192, 96) -> (N, 112, 12, 6) C4 features."""
        x = self.stem(crops)
        for block in self.blocks:
            x = block(x)
        return x

    def classify(self, c4: Tensor, people_crops: Tensor | None = None) -> Tensor:
        """(N, 112, 12, 6) C4 features (`features`) -> (N,) logits of facing the camera (the mean
        of the heads' logits); with ``people`` heads, the mean of that and of theirs on
        ``people_crops`` (N, 3, *PEOPLE_CROP) of the same people (`person_crops`)."""
        logits = self.lite0_logits(c4)
        return logits if self.people is None else self.with_people(logits, people_crops)

    def with_people(self, lite0_logits: Tensor, people_crops: Tensor | None) -> Tensor:
        """(N,) the Lite0 heads' mean logit (`lite0_logits`) -> (N,) its mean with the people heads'
        on ``people_crops`` (N, 3, *PEOPLE_CROP) of the same people."""
        if people_crops is None:
            raise ValueError("a facing classifier with people heads reads their crops as well as the C4 features")
        return self.with_people_features(lite0_logits, self.people.features(people_crops))

    def with_people_features(self, lite0_logits: Tensor, people_c4: Tensor) -> Tensor:
        """As `with_people`, from the people trunk's (N, 96, 16, 8) C4 features of the crops."""
        return (lite0_logits + self.people.classify(people_c4)) / 2

    def lite0_logits(self, c4: Tensor) -> Tensor:
        """(N, 112, 12, 6) C4 features -> (N,) the mean logit of the heads on them."""
        logits = self.head(c4)[:, 0]
        for head in self.more_heads:
            logits = logits + head(c4)[:, 0]
        return logits / (1 + len(self.more_heads))

    def forward(self, crops: Tensor, people_crops: Tensor | None = None) -> Tensor:
        return self.classify(self.features(crops), people_crops)


def reweight_charts(fine_segm: Tensor, p_camera: Tensor, ratio: Tensor, power: float = 1.0) -> Tensor:
    """The head's chart scores given each person's facing (module docstring).

    Args:
        fine_segm: (N, 25, S, S) chart logits (channel 0 background), as the head gives them.
        p_camera: (N,) probability that the person faces the camera.
        ratio: (2, B, 25) ``P(chart | away, column), P(chart | camera, column)`` over
            ``P(chart | column)``, for B equal columns of the box (left to right); chart 0 unused.
        power: the weights are raised to it (``ModelConfig.facing_power``); 1: Bayes' rule.

    Returns:
        (N, 25, S, S) logits: the softmax probabilities of channels 1..24 multiplied by the
        person's weights of their column (to ``power``) and rescaled to their old sum; channel 0
        as it was.
    """
    return weigh_charts(fine_segm, facing_log_weight(p_camera, ratio, fine_segm.shape[-1], power))


def facing_log_weight(p_camera: Tensor, ratio: Tensor, size: int, power: float = 1.0) -> Tensor:
    """The facing's log weights of charts 1..24 for each column of each person's S x S map:
    (N, 24, 1, S) (arguments as `reweight_charts`, which adds them to the charts with `weigh_charts`)."""
    bins = ratio.shape[1]
    p = p_camera.float()[:, None, None]
    weight = p * ratio[1, :, 1:].float() + (1 - p) * ratio[0, :, 1:].float()  # (N, B, 24)
    column_bin = torch.arange(size, device=ratio.device) * bins // size
    return power * weight[:, column_bin].log().permute(0, 2, 1)[:, :, None, :]


def weigh_charts(fine_segm: Tensor, log_weight: Tensor) -> Tensor:
    """(N, 25, S, S) chart logits (channel 0 background) and log weights of charts 1..24 that
    broadcast to (N, 24, S, S) -> the charts' probabilities multiplied by the weights and rescaled
    to their old total against channel 0, which is unchanged (the silhouette stays)."""
    charts = fine_segm[:, 1:].float()
    weighted = charts + log_weight
    # Adding log weights multiplies the probabilities; the shift keeps the charts' total against the background.
    weighted = weighted + (_logsumexp(charts) - _logsumexp(weighted))
    return torch.cat([fine_segm[:, :1], weighted.to(fine_segm.dtype)], dim=1)


def _logsumexp(x: Tensor) -> Tensor:
    """``x.logsumexp(1, keepdim=True)``; spelt out under graph tracing: torch.export cannot trace
    the built-in's empty-tensor branch when the batch is the number of detections (the built-in is
    six times faster on the CPU)."""
    if not torch.compiler.is_compiling():
        return x.logsumexp(1, keepdim=True)
    top = x.amax(1, keepdim=True)
    return top + (x - top).exp().sum(1, keepdim=True).log()


def to_facing_input(images: Tensor, pixel_mean: Tensor, pixel_std: Tensor) -> Tensor:
    """(B, 3, H, W) normalised with the detector's ``pixel_mean``/``pixel_std`` (3, 1, 1) -> the
    classifier's normalisation: ``images`` themselves for the EfficientNet-Lite detectors, whose
    normalisation it is (the arithmetic would give them back exactly: 128 is a power of two)."""
    if not torch.compiler.is_compiling() and bool((pixel_mean == FACING_MEAN).all() & (pixel_std == FACING_STD).all()):
        return images
    return (images * pixel_std + pixel_mean - FACING_MEAN) / FACING_STD
