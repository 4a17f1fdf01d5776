"""Checkpoints in detectron2's exact format (official key names and shapes, random values), for tests.

The key list is written out from detectron2's module tree (GeneralizedRCNN + DensePoseROIHeads of
``projects/DensePose``), independently of ``densepose.modeling.detectron2``; it was checked key for
key and shape for shape against ``build_model(cfg).state_dict()`` of detectron2 itself for every
variant below (docs/DETECTRON2.md).
"""
from __future__ import annotations

import numpy as np

RES_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def _conv(out: dict, name: str, cout: int, cin: int, k: int, bias: bool = True) -> None:
    out[f"{name}.weight"] = (cout, cin, k, k)
    if bias:
        out[f"{name}.bias"] = (cout,)


def _frozen_bn(out: dict, name: str, c: int) -> None:
    for field in ("weight", "bias", "running_mean", "running_var"):
        out[f"{name}.{field}"] = (c,)


def detectron2_shapes(depth: int = 50, deeplab: bool = False, nonlocal_block: bool = False, legacy: bool = False,
                      uv_confidence: str | None = None, segm_confidence: bool = False) -> dict[str, tuple]:
    """Official key -> shape of a detectron2 DensePose chart model (``pixel_mean``/``pixel_std`` excluded)."""
    s: dict[str, tuple] = {}
    bu = "backbone.bottom_up."
    _conv(s, bu + "stem.conv1", 64, 3, 7, bias=False)
    _frozen_bn(s, bu + "stem.conv1.norm", 64)
    cin, width = 64, 64
    for stage, blocks in enumerate(RES_BLOCKS[depth], start=2):
        cout = width * 4
        for b in range(blocks):
            p = f"{bu}res{stage}.{b}."
            if b == 0:
                _conv(s, p + "shortcut", cout, cin, 1, bias=False)
                _frozen_bn(s, p + "shortcut.norm", cout)
            for i, (co, ci, k) in enumerate([(width, cin if b == 0 else cout, 1), (width, width, 3), (cout, width, 1)], 1):
                _conv(s, p + f"conv{i}", co, ci, k, bias=False)
                _frozen_bn(s, p + f"conv{i}.norm", co)
        cin, width = cout, width * 2
    for lvl, c in zip(range(2, 6), (256, 512, 1024, 2048)):
        _conv(s, f"backbone.fpn_lateral{lvl}", 256, c, 1)
        _conv(s, f"backbone.fpn_output{lvl}", 256, 256, 3)
    rpn = "proposal_generator.rpn_head."
    _conv(s, rpn + "conv", 256, 256, 3)
    _conv(s, rpn + "objectness_logits", 3, 256, 1)
    _conv(s, rpn + "anchor_deltas", 12, 256, 1)
    s.update({"roi_heads.box_head.fc1.weight": (1024, 256 * 49), "roi_heads.box_head.fc1.bias": (1024,),
              "roi_heads.box_head.fc2.weight": (1024, 1024), "roi_heads.box_head.fc2.bias": (1024,),
              "roi_heads.box_predictor.cls_score.weight": (2, 1024), "roi_heads.box_predictor.cls_score.bias": (2,),
              "roi_heads.box_predictor.bbox_pred.weight": (4, 1024), "roi_heads.box_predictor.bbox_pred.bias": (4,)})
    if not legacy:
        for lvl in range(2, 6):  # p2: conv; p3..p5: (conv, upsample) x (lvl - 2)
            for i in range(max(1, lvl - 2)):
                _conv(s, f"roi_heads.decoder.p{lvl}.{2 * i if lvl > 2 else i}", 256, 256, 3)
        _conv(s, "roi_heads.decoder.predictor", 256, 256, 1)
    head = "roi_heads.densepose_head."
    if deeplab:
        _conv(s, head + "ASPP.convs.0.0", 256, 256, 1, bias=False)
        s[head + "ASPP.convs.0.1.weight"] = s[head + "ASPP.convs.0.1.bias"] = (256,)
        for i in (1, 2, 3):
            _conv(s, head + f"ASPP.convs.{i}.0", 256, 256, 3, bias=False)
            s[head + f"ASPP.convs.{i}.1.weight"] = s[head + f"ASPP.convs.{i}.1.bias"] = (256,)
        _conv(s, head + "ASPP.convs.4.1", 256, 256, 1, bias=False)
        s[head + "ASPP.convs.4.2.weight"] = s[head + "ASPP.convs.4.2.bias"] = (256,)
        _conv(s, head + "ASPP.project.0", 256, 1280, 1, bias=False)
        if nonlocal_block:
            _conv(s, head + "NLBlock.g.0", 128, 256, 1)
            _conv(s, head + "NLBlock.theta", 128, 256, 1)
            _conv(s, head + "NLBlock.phi.0", 128, 256, 1)
            _conv(s, head + "NLBlock.W.0", 256, 128, 1)
            s[head + "NLBlock.W.1.weight"] = s[head + "NLBlock.W.1.bias"] = (256,)
        for i in range(1, 9):
            _conv(s, head + f"body_conv_fcn{i}", 512, 256 if i == 1 else 512, 3, bias=False)
            s[head + f"body_conv_fcn{i}.norm.weight"] = s[head + f"body_conv_fcn{i}.norm.bias"] = (512,)
    else:
        for i in range(1, 9):
            _conv(s, head + f"body_conv_fcn{i}", 512, 256 if i == 1 else 512, 3)
    pred = "roi_heads.densepose_predictor."
    outputs = {"ann_index_lowres": 15 if legacy else 2, "index_uv_lowres": 25, "u_lowres": 25, "v_lowres": 25}
    if uv_confidence:
        outputs["sigma_2_lowres"] = 25
    if uv_confidence == "indep_aniso":
        outputs.update(kappa_u_lowres=25, kappa_v_lowres=25)
    if segm_confidence:
        outputs.update(fine_segm_confidence_lowres=1, coarse_segm_confidence_lowres=1)
    for name, c in outputs.items():  # ConvTranspose2d weights are (in, out, k, k)
        s[pred + name + ".weight"] = (512, c, 4, 4)
        s[pred + name + ".bias"] = (c,)
    return s


def detectron2_state(seed: int = 0, **variant) -> dict[str, np.ndarray]:
    """Random float32 arrays with the official names and shapes; FrozenBN variances positive."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in detectron2_shapes(**variant).items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        if key.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif "box_predictor" in key and len(shape) > 1:  # detectron2's init: scores near 0.5, small deltas
            value = rng.standard_normal(shape, dtype=np.float32) * (0.01 if "cls_score" in key else 0.001)
        elif len(shape) == 1 and key.endswith(".weight"):  # FrozenBN / GroupNorm scale
            value = rng.uniform(0.5, 1.0, shape).astype(np.float32)
        else:
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(1 / np.sqrt(fan_in) if len(shape) > 1 else 0.05)
        out[key] = value
    return out
