"""DensePose-RCNN in plain PyTorch (no torchvision): ops, ResNet-FPN, RPN, ROI heads, DensePose head.

How to use::

    import torch
    from densepose.modeling import DensePoseRCNN, light_config, r50_fpn_config

    cfg = light_config()                      # or r50_fpn_config(backbone_weights="resnet50.pth")
    model = DensePoseRCNN(cfg)

    # Training: images are (3, H, W) float RGB 0..255 (any size; the model resizes, normalises, pads)
    model.train()
    targets = [{
        "boxes": torch.tensor([[10., 20., 110., 220.]]),          # (G, 4) xyxy input pixels
        "keypoints": None or (G, 17, 3) float (x, y, v),           # optional
        "masks": None or (G, H, W) uint8,                          # optional
        "dp": [None or {"x": (P,), "y": (P,), "I": (P,) 1..24,     # x, y in 0..256 box coords
                        "U": (P,), "V": (P,), "mask": (256, 256) uint8 0..14 or None}],
    }]
    losses = model(images, targets)          # dict of scalar losses
    sum(losses.values()).backward()

    # Inference
    model.eval()
    out = model(images)                      # per image: boxes, scores, coarse_segm, fine_segm, u, v
    from densepose.modeling.postprocess import densepose_to_iuv
    iuv = densepose_to_iuv(out[0]["coarse_segm"][0], out[0]["fine_segm"][0],
                           out[0]["u"][0], out[0]["v"][0], out[0]["boxes"][0])   # uint8 (3, h, w)

Loss keys: ``loss_rpn_cls, loss_rpn_loc, loss_cls, loss_box_reg`` (+ ``loss_mask``,
``loss_keypoint``) + ``loss_densepose_{S,I,U,V}`` (+ ``loss_densepose_{S,I,U,V}_stage2`` with
``cascade=True``). Every loss is already weighted: the total loss is their plain sum.

Config: :class:`ModelConfig` (flat dataclass; ``to_dict``/``from_dict`` for checkpoints). Presets:
:func:`r50_fpn_config` (the reference R-50-FPN) and :func:`light_config` (ResNet-18 at half width, FPN-64, GN,
512 px, DP head 4 x 128; the bundled CPU model). Backbone weight files: see ``densepose.modeling.backbone``.
"""
from densepose.modeling.config import (
    ModelConfig,
    efficientnet_lite_config,
    light_config,
    r50_fpn_config,
    tiny_config,
)
from densepose.modeling.rcnn import DensePoseRCNN

__all__ = ["DensePoseRCNN", "ModelConfig", "efficientnet_lite_config", "light_config", "r50_fpn_config",
           "tiny_config"]
