"""detectron2 DensePose model-zoo models (chart-based IUV) in plain torch, for inference.

    from densepose.modeling.detectron2 import load_detectron2_model
    model = load_detectron2_model("model_final_162be9.pkl")     # R_50_FPN_s1x; variant from the keys
    out = model([image_rgb_float_chw])[0]                        # boxes, scores, coarse_segm, fine_segm, u, v

Modules: `resnet` (FrozenBN, stride in 1x1), `deeplab` (ASPP + non-local head), `predictor`
(chart outputs + confidences), `variant` (which model a file holds; detectron2 -> our key names),
`model` (the whole network), `checkpoint` (reading ``.pkl``/``.pth`` files safely). Our own FPN, RPN,
box head, decoder, conv head and ops are reused. docs/DETECTRON2.md has the details.
"""
from densepose.modeling.detectron2.checkpoint import is_detectron2_file, load_detectron2_model, read_state_dict
from densepose.modeling.detectron2.model import Detectron2DensePoseRCNN
from densepose.modeling.detectron2.variant import Variant, detect_variant, to_model_keys

__all__ = ["Detectron2DensePoseRCNN", "Variant", "detect_variant", "is_detectron2_file", "load_detectron2_model",
           "read_state_dict", "to_model_keys"]
