"""Evaluation: GPS / GPSm / IOU AP (the official DensePose protocol), the paper's pointwise
curve, and COCO box / mask / keypoint AP.

>>> from densepose.evaluation import evaluate
>>> metrics = evaluate("annotations.json", "results.json", surface)   # or surface="anny"
>>> metrics["densepose"]["gps"]["AP"]
"""
from densepose.evaluation.evaluator import evaluate
from densepose.evaluation.model_eval import detections_from_arrays, evaluate_model
from densepose.evaluation.results import Detections, load_results, write_results_npz

__all__ = ["evaluate", "evaluate_model", "detections_from_arrays", "Detections", "load_results", "write_results_npz"]
