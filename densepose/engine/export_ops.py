"""The two data-dependent detection ops as graph ops, so a whole detector can be exported.

``densepose_export::nms`` and ``densepose_export::roi_align`` are `torch.library` custom ops: in
PyTorch (eager, TorchScript) they run our plain-torch `densepose.modeling.ops` code; in ONNX they
become the standard ``NonMaxSuppression`` and ``RoiAlign`` operators (opset 18), so an ONNX file
runs in any ONNX runtime without this package. A TorchScript file calls them by name, so loading
one needs ``import densepose.engine.export_ops`` first.

* ``nms(boxes (N, 4), scores (N,), iou, score_threshold, max_output)`` -> kept indices (K,) by
  decreasing score: boxes with ``score <= score_threshold`` are dropped first (ONNX semantics),
  then greedy NMS (suppress IoU > ``iou``), then the first ``max_output``.
* ``roi_align(features (1, C, H, W), boxes (K, 4), output_height, output_width, spatial_scale,
  sampling_ratio, aligned)`` -> (K, C, output_height, output_width): RoIAlign of one image (ONNX
  ``half_pixel`` = ``aligned=True``, ``output_half_pixel`` = the legacy ``aligned=False``).
"""
from __future__ import annotations

import torch
from torch import Tensor

from densepose.modeling.ops import nms as plain_nms
from densepose.modeling.ops import roi_align as plain_roi_align


@torch.library.custom_op("densepose_export::nms", mutates_args=())
def nms(boxes: Tensor, scores: Tensor, iou: float, score_threshold: float, max_output: int) -> Tensor:
    candidates = torch.nonzero(scores > score_threshold).squeeze(1)
    keep = plain_nms(boxes[candidates], scores[candidates], iou, max_output=max_output)
    return candidates[keep]


@nms.register_fake
def _nms_fake(boxes, scores, iou, score_threshold, max_output):
    return boxes.new_empty((torch.library.get_ctx().new_dynamic_size(),), dtype=torch.long)


@torch.library.custom_op("densepose_export::roi_align", mutates_args=())
def roi_align(features: Tensor, boxes: Tensor, output_height: int, output_width: int, spatial_scale: float,
              sampling_ratio: int, aligned: bool) -> Tensor:
    rois = torch.cat([boxes.new_zeros((boxes.shape[0], 1)), boxes], dim=1)
    return plain_roi_align(features, rois, (output_height, output_width), spatial_scale, sampling_ratio,
                           aligned).contiguous()


@roi_align.register_fake
def _roi_align_fake(features, boxes, output_height, output_width, spatial_scale, sampling_ratio, aligned):
    return features.new_empty((boxes.shape[0], features.shape[1], output_height, output_width))


def onnx_translations() -> dict:
    """``{custom op: ONNX function}`` for ``torch.onnx.export(..., custom_translation_table=...)`` (needs onnxscript)."""
    import onnx
    from onnxscript import opset18 as op

    def onnx_nms(boxes, scores, iou: float, score_threshold: float, max_output: int):
        zero = op.Constant(value_ints=[0])
        selected = op.NonMaxSuppression(
            op.Unsqueeze(boxes, zero), op.Unsqueeze(op.Unsqueeze(scores, zero), zero),
            op.Constant(value_ints=[max_output]), op.Constant(value_floats=[iou]),
            op.Constant(value_floats=[score_threshold]))  # (K, 3) = [batch, class, box index]
        column = op.Slice(selected, op.Constant(value_ints=[2]), op.Constant(value_ints=[3]),
                          op.Constant(value_ints=[1]))
        return op.Reshape(column, op.Constant(value_ints=[-1]))

    def onnx_roi_align(features, boxes, output_height: int, output_width: int, spatial_scale: float,
                       sampling_ratio: int, aligned: bool):
        count = op.Slice(op.Shape(boxes), op.Constant(value_ints=[0]), op.Constant(value_ints=[1]))
        batch_indices = op.ConstantOfShape(count, value=onnx.helper.make_tensor("zero", onnx.TensorProto.INT64, [1], [0]))
        return op.RoiAlign(features, boxes, batch_indices, mode="avg", output_height=output_height,
                           output_width=output_width, sampling_ratio=sampling_ratio, spatial_scale=spatial_scale,
                           coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel")

    return {torch.ops.densepose_export.nms.default: onnx_nms,
            torch.ops.densepose_export.roi_align.default: onnx_roi_align}
