"""Which detectron2 DensePose model a state dict holds, and its keys renamed to our modules.

Variants (detectron2 ``projects/DensePose/configs``), told apart by keys and shapes only:

| variant | evidence in the state dict |
|---|---|
| ``R_50`` / ``R_101`` | 6 / 23 blocks in ``backbone.bottom_up.res4`` |
| ``_DL`` (DeepLab head) | ``roi_heads.densepose_head.ASPP.*`` (non-local block: ``NLBlock.*``) |
| ``_WC1`` / ``_WC2`` | ``densepose_predictor.sigma_2_lowres`` / also ``kappa_u_lowres``, ``kappa_v_lowres`` |
| ``..M`` (segmentation confidence) | ``densepose_predictor.fine_segm_confidence_lowres`` |
| ``_legacy`` | no ``roi_heads.decoder.*``; 15-channel ``ann_index_lowres`` |

Legacy models pool 14x14 RoIs from P2..P5 (heatmaps 56x56); the others pool 28x28 from the
decoder's stride-4 map (112x112). The pooler size is not stored in the file: it follows from the
decoder's presence, as in every detectron2 config.

Renaming (detectron2 -> ours) where we reuse our own modules: ``backbone.fpn_lateral{k}`` ->
``backbone.fpn.lateral.{k-2}`` (and ``fpn_output``), ``proposal_generator.rpn_head.{conv,
objectness_logits, anchor_deltas}`` -> ``rpn.head.{conv, objectness, deltas}``,
``roi_heads.box_head.fc{1,2}`` / ``roi_heads.box_predictor.*`` -> ``box_head.*``,
``roi_heads.decoder.p{k}.{i}`` -> ``dp_decoder.scale_heads.{k-2}.{j}`` (our levels interleave a
ReLU module), ``roi_heads.densepose_head.body_conv_fcn{i}`` -> ``dp_head.convs.{2(i-1)}`` (our
conv head) and ``roi_heads.densepose_predictor.*`` -> ``dp_predictor.*``. The ResNet and the
DeepLab head keep detectron2's names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from torch import Tensor

from densepose.errors import UserError
from densepose.modeling.detectron2.resnet import DEPTH_BLOCKS

#: Keys of a detectron2 model that hold no weight we need (GeneralizedRCNN's normalisation buffers).
IGNORED_KEYS = ("pixel_mean", "pixel_std")
_EXPECTED = ("a detectron2 DensePose chart (IUV) model: keys like backbone.bottom_up.res2.0.conv1.weight and "
             "roi_heads.densepose_predictor.index_uv_lowres.weight (model-zoo densepose_rcnn_R_*_FPN_* .pkl or .pth)")


@dataclass(frozen=True)
class Variant:
    depth: int = 50  # 50 | 101
    head: str = "v1convx"  # v1convx | deeplab
    nonlocal_block: bool = False  # DeepLab head only
    num_convs: int = 8
    head_dim: int = 512
    decoder: bool = True  # False: *_legacy
    coarse_channels: int = 2  # 15 for *_legacy
    uv_confidence: str | None = None  # None | iid_iso (WC1) | indep_aniso (WC2)
    segm_confidence: bool = False  # WC1M / WC2M

    @property
    def pool_size(self) -> int:
        """RoIAlign output size of the DensePose head (heatmaps are 4x this)."""
        return 28 if self.decoder else 14

    @property
    def name(self) -> str:
        """The model-zoo config name, e.g. ``R_50_FPN_DL_WC2M_s1x`` or ``R_101_FPN_s1x_legacy``."""
        parts = [f"R_{self.depth}_FPN"]
        if self.head == "deeplab":
            parts.append("DL")
        if self.uv_confidence:
            parts.append(("WC1" if self.uv_confidence == "iid_iso" else "WC2") + ("M" if self.segm_confidence else ""))
        parts.append("s1x")
        return "_".join(parts) + ("" if self.decoder else "_legacy")


def _block_count(state: dict[str, Tensor], stage: int) -> int:
    ids = {int(m[1]) for k in state if (m := re.match(rf"backbone\.bottom_up\.res{stage}\.(\d+)\.", k))}
    return max(ids) + 1 if ids else 0


def detect_variant(state: dict[str, Tensor], label: str = "") -> Variant:
    """The `Variant` of a detectron2 state dict (names -> tensors); `UserError` naming what was expected."""
    where = f"{label}: " if label else ""
    pred = "roi_heads.densepose_predictor."
    if any(k.startswith(pred + "embedder") or k.startswith(pred + "embedding") for k in state) or \
            any(k.startswith("roi_heads.embedder") for k in state):
        raise UserError(f"{where}a detectron2 continuous-surface-embedding (CSE) model; expected {_EXPECTED}")
    if pred + "index_uv_lowres.weight" not in state or "backbone.bottom_up.stem.conv1.weight" not in state:
        sample = next(iter(state), "<none>")
        raise UserError(f"{where}not {_EXPECTED}; its first key is {sample!r}")
    blocks = _block_count(state, 4)
    depth = next((d for d, spec in DEPTH_BLOCKS.items() if spec[2] == blocks), None)
    if depth is None:
        raise UserError(f"{where}a ResNet with {blocks} res4 blocks; expected R-50 (6) or R-101 (23) in {_EXPECTED}")
    cls = state.get("roi_heads.box_predictor.cls_score.weight")
    if cls is None or cls.shape[0] != 2:
        got = "none" if cls is None else cls.shape[0]
        raise UserError(f"{where}box classifier has {got} outputs; expected 2 (person, background) in {_EXPECTED}")
    head = "deeplab" if any(k.startswith("roi_heads.densepose_head.ASPP.") for k in state) else "v1convx"
    convs = sorted({int(m[1]) for k in state if (m := re.match(r"roi_heads\.densepose_head\.body_conv_fcn(\d+)\.", k))})
    if not convs:
        raise UserError(f"{where}no roi_heads.densepose_head.body_conv_fcn* layers; expected {_EXPECTED}")
    has = lambda name: pred + name + "_lowres.weight" in state  # noqa: E731
    uv = "indep_aniso" if has("kappa_u") else "iid_iso" if has("sigma_2") else None
    return Variant(
        depth=depth, head=head, nonlocal_block=any(k.startswith("roi_heads.densepose_head.NLBlock.") for k in state),
        num_convs=len(convs), head_dim=int(state["roi_heads.densepose_head.body_conv_fcn1.weight"].shape[0]),
        decoder="roi_heads.decoder.predictor.weight" in state,
        coarse_channels=int(state[pred + "ann_index_lowres.weight"].shape[1]),
        uv_confidence=uv, segm_confidence=has("fine_segm_confidence"),
    )


_RENAMES = [
    (r"backbone\.fpn_(lateral|output)(\d)\.", lambda m: f"backbone.fpn.{m[1]}.{int(m[2]) - 2}."),
    (r"proposal_generator\.rpn_head\.objectness_logits\.", lambda m: "rpn.head.objectness."),
    (r"proposal_generator\.rpn_head\.anchor_deltas\.", lambda m: "rpn.head.deltas."),
    (r"proposal_generator\.rpn_head\.conv\.", lambda m: "rpn.head.conv."),
    (r"roi_heads\.box_(head|predictor)\.", lambda m: "box_head."),
    (r"roi_heads\.decoder\.p(\d)\.(\d+)\.",
     lambda m: f"dp_decoder.scale_heads.{int(m[1]) - 2}.{3 * (int(m[2]) // 2) if m[1] != '2' else 2 * int(m[2])}."),
    (r"roi_heads\.decoder\.predictor\.", lambda m: "dp_decoder.predictor."),
    (r"roi_heads\.densepose_predictor\.", lambda m: "dp_predictor."),
]


def to_model_keys(state: dict[str, Tensor], variant: Variant) -> dict[str, Tensor]:
    """detectron2 names -> the names of `Detectron2DensePoseRCNN`'s state dict (see the module docstring)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key in IGNORED_KEYS or key.endswith("num_batches_tracked"):
            continue
        new = key
        for pattern, repl in _RENAMES:
            m = re.match(pattern, key)
            if m:
                new = repl(m) + key[m.end():]
                break
        else:
            m = re.match(r"roi_heads\.densepose_head\.body_conv_fcn(\d+)\.", key)
            if m and variant.head == "v1convx":
                new = f"dp_head.convs.{2 * (int(m[1]) - 1)}." + key[m.end():]
            elif key.startswith("roi_heads.densepose_head."):
                new = "dp_head." + key.removeprefix("roi_heads.densepose_head.")
        out[new] = value
    return out
