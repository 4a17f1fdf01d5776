"""Detection ops in plain torch: boxes, NMS, anchors, RoIAlign."""
from densepose.modeling.ops.anchors import AnchorGenerator
from densepose.modeling.ops.boxes import (
    batched_nms,
    box_area,
    box_iou,
    clip_boxes,
    decode_boxes,
    encode_boxes,
    grow_boxes,
    nms,
    nonempty,
    vote_boxes,
)
from densepose.modeling.ops.nms_images import batched_nms_per_image
from densepose.modeling.ops.roi_align import MultiScaleRoIAlign, assign_fpn_levels, boxes_to_rois, roi_align

__all__ = [
    "AnchorGenerator", "MultiScaleRoIAlign", "assign_fpn_levels", "batched_nms", "batched_nms_per_image", "box_area",
    "box_iou", "boxes_to_rois", "clip_boxes", "decode_boxes", "encode_boxes", "grow_boxes", "nms", "nonempty", "roi_align",
    "vote_boxes",
]
