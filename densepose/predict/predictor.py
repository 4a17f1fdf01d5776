"""`Predictor`: a model plus its inference settings, from RGB images to `ImageResult`s."""
from __future__ import annotations

import inspect
import os
from typing import Any, Sequence

import numpy as np
import torch

from densepose.errors import UserError
from densepose.modeling.dense_score import dense_scores
from densepose.modeling.guided_silhouette import snap_with_settings
from densepose.predict.cpu import resolve_precision
from densepose.predict.results import ImageResult, PersonResult, chart_outputs_to_result


class Predictor:
    """Wraps a `DensePoseRCNN` (or any module honouring its eval contract) for RGB images.

    The model resizes each image (shorter side ``min_size``, longer at most ``max_size``; default:
    the model config's test sizes and ``max_size``; several sizes, e.g. ``(512, 384, 256)``, are
    each tested and their detections merged, for models that can) with `densepose.modeling.transform` and
    maps its outputs back, so every result is in the input image's pixels. The settings travel
    with each call; the model and its config are never changed. Images of different sizes in one
    batch give the same answers as one at a time.

    ``flip``: the flip test (`densepose.modeling.flip_test`): the DensePose head also reads each
    mirrored image and the two answers are averaged; boxes and scores are unchanged. About 1.5x
    the time; parts and U, V agree better with the truth (MODELS.md, "Flip test"). ``symmetry_file``:
    the chart's ``UV_symmetry_transforms.mat`` for it, needed by detectron2 files (SMPL chart).

    ``zoom``: the DensePose head reads the people shorter than the model's ``dp_zoom_max_height``
    (128 pixels at the test size) from the image resized to this larger shorter side
    (`densepose.modeling.zoom`): finer parts and U, V for small people, for one more trunk pass at
    that size; 0: off; None: the model file's ``dp_zoom_size``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: str | torch.device = "cpu",
        min_score: float | None = None,
        min_size: int | Sequence[int] | None = None,
        max_size: int | None = None,
        precision: str = "auto",
        flip: bool = False,
        symmetry_file: str | os.PathLike | None = None,
        zoom: int | None = None,
    ):
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = model.to(self.device).eval()
        self.min_score = float(default_min_score(self.model) if min_score is None else min_score)
        self.min_size = parse_test_sizes(min_size)
        self.max_size = None if max_size is None else int(max_size)
        # DensePoseRCNN and the detectron2 models take these per call; a plain module gets images only.
        params = inspect.signature(self.model.forward).parameters
        self._takes_settings = all(name in params for name in ("min_size", "max_size", "score_thresh"))
        if isinstance(self.min_size, tuple) and not getattr(self.model, "tests_at_several_sizes", False):
            raise UserError(f"{type(self.model).__name__} tests at one size; got sizes {list(self.min_size)}")
        self.flip_uv = None
        if symmetry_file is not None and not flip:
            raise UserError("symmetry tables are read by the flip test only; ask for it too (--flip / flip=True)")
        if flip:
            if not (self._takes_settings and "flip_uv" in params):
                raise UserError(f"{type(self.model).__name__} has no flip test; it runs on this toolkit's models "
                                "and detectron2 files, not on exported graphs")
            from densepose.modeling.flip_test import flip_tables

            self.flip_uv = flip_tables(getattr(self.model, "chart", "anny"), symmetry_file).to(self.device)
        self.zoom = None if zoom is None else int(zoom)
        if self.zoom is not None and not (self._takes_settings and "dp_zoom_size" in params):
            raise UserError(f"{type(self.model).__name__} cannot read small people at a larger size (--zoom); "
                            "this toolkit's own models can")
        if self.zoom is not None and self.zoom < 0:
            raise UserError(f"--zoom must be a shorter side in pixels, or 0 for off; got {self.zoom}")

    def to_tensor(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 (H, W, 3) -> float (3, H, W) 0..255 on this predictor's device."""
        array = np.ascontiguousarray(image)
        if not array.flags.writeable:  # torch.from_numpy warns on read-only memory
            array = array.copy()
        return torch.from_numpy(array).to(self.device).permute(2, 0, 1).float()

    @torch.inference_mode()
    def forward(self, tensors: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """The model on (3, H, W) float tensors, in this predictor's precision (raw model outputs, input pixels)."""
        kwargs = {}
        if self._takes_settings:
            # Low scores are dropped before the per-box heads run: their cost grows per box.
            kwargs = dict(min_size=self.min_size, max_size=self.max_size, score_thresh=self.min_score)
        if self.flip_uv is not None:
            kwargs["flip_uv"] = self.flip_uv
        if self.zoom is not None:
            kwargs["dp_zoom_size"] = self.zoom
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return self.model(tensors, **kwargs)

    @torch.inference_mode()
    def predict_batch(self, images: list[Any], frame_sizes: list[tuple[int, int]] | None = None) -> list[ImageResult]:
        """Run the model on a list of images (RGB arrays, PIL images or paths); people sorted by score.

        ``frame_sizes``: per image the (h, w) its results are reported in, when the array is a
        downscaled copy of a larger picture (`densepose.io.images.read_image` says so); boxes and
        maps then come out in the larger picture's pixels. Paths are handled this way by themselves.
        """
        from densepose.io.images import image_to_array, read_image

        arrays, frames = [], []
        for k, im in enumerate(images):
            if isinstance(im, (str, bytes)) or hasattr(im, "__fspath__"):
                decoded = read_image(im)
                arrays.append(decoded.array)
                frames.append(decoded.original_size)
            else:
                arrays.append(image_to_array(im))
                frames.append(arrays[-1].shape[:2])
            if frame_sizes is not None:
                frames[-1] = tuple(frame_sizes[k])
        outputs = self.forward([self.to_tensor(a) for a in arrays])
        return [self.image_result(arr, frame, out) for arr, frame, out in zip(arrays, frames, outputs)]

    def image_result(self, array: np.ndarray, frame: tuple[int, int], out: dict[str, torch.Tensor]) -> ImageResult:
        """One image's people from the model's raw outputs (`forward`), highest score first.

        Every person scoring at least ``min_score`` gets labels and U, V at the size of the box
        their maps cover, the silhouette snapped to the image's edges and the dense score, as the
        model's settings ask (`snap_with_settings`, `dense_scores`). ``array``: the RGB image the
        model read; ``frame``: the (h, w) the results are reported in (``array``'s own size, or the
        larger picture it is a downscaled copy of). `evaluate_model` builds its detections here too,
        so a model is scored on what ``predict`` writes.
        """
        h, w = array.shape[:2]
        fh, fw = frame
        boxes = _in_frame(out["boxes"], (h, w), (fh, fw))
        # The maps cover the detection box, or the larger box the model's DensePose head read.
        map_boxes = _in_frame(out["dp_boxes"], (h, w), (fh, fw)) if "dp_boxes" in out else boxes
        scores = out["scores"].float()
        chart = getattr(self.model, "chart", "anny")
        cfg = getattr(self.model, "cfg", None)
        dense = dense_scores(cfg, scores, out["coarse_segm"], out["fine_segm"]) if len(scores) else None
        people = []
        for k in kept_order(scores, self.min_score):
            labels, u, v, origin = chart_outputs_to_result(
                map_boxes[k], out["coarse_segm"][k], out["fine_segm"][k], out["u"][k], out["v"][k]
            )
            labels, (u, v) = snap_with_settings(cfg, array, (fh, fw), labels, (u, v), origin)
            people.append(PersonResult(boxes[k].numpy().astype(np.float32), float(scores[k]), labels, u, v, origin, chart,
                                       _confidences(out, k, labels, map_boxes[k]),
                                       float(out["facing"][k]) if "facing" in out else None,
                                       map_boxes[k].numpy().astype(np.float32) if "dp_boxes" in out else None,
                                       None if dense is None else float(dense[k])))
        return ImageResult(people, array, frame_size=(fh, fw))

    def __call__(self, image: Any) -> ImageResult:
        return self.predict_batch([image])[0]


def kept_order(scores: torch.Tensor, min_score: float) -> list[int]:
    """Indices of the (N,) ``scores`` at least ``min_score``, highest first (ties in input order)."""
    values = scores.float().cpu()
    order = torch.sort(values, descending=True, stable=True).indices.tolist()
    return [k for k in order if values[k] >= min_score]


def parse_test_sizes(min_size: int | Sequence[int] | None) -> int | tuple[int, ...] | None:
    """The shorter side(s) to test at: None (the model's), one int, or a tuple of two or more."""
    if min_size is None:
        return None
    sizes = list(min_size) if isinstance(min_size, (list, tuple)) else [min_size]
    if not sizes or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
        raise UserError(f"test sizes must be positive integers (shorter image sides), got {min_size!r}")
    sizes = [int(s) for s in sizes]
    return sizes[0] if len(sizes) == 1 else tuple(sizes)


def _in_frame(boxes: torch.Tensor, size: tuple[int, int], frame: tuple[int, int]) -> torch.Tensor:
    """(N, 4) boxes in the pixels of an (h, w) array -> in those of its (fh, fw) frame, of which the
    array is a downscaled decode (`densepose.io.images.read_image`); clipped to the frame."""
    boxes = boxes.float().cpu()
    (h, w), (fh, fw) = size, frame
    if (fh, fw) == (h, w):
        return boxes
    boxes = boxes * torch.tensor([fw / w, fh / h, fw / w, fh / h])
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, fw)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, fh)
    return boxes


def _confidences(out: dict[str, torch.Tensor], k: int, labels: np.ndarray, box: torch.Tensor) -> dict[str, np.ndarray]:
    """Confidence maps of detection ``k`` at box size, for models that predict them (else empty)."""
    if not any(key.endswith("confidence") or key in ("sigma_2", "kappa_u", "kappa_v") for key in out):
        return {}
    from densepose.modeling.detectron2.confidence import confidences_at_box

    return confidences_at_box(out, k, labels, box)


def default_min_score(model: torch.nn.Module) -> float:
    """The score from which ``model`` keeps people by default: its config's ``default_min_score``, else 0.5."""
    return float(getattr(getattr(model, "cfg", None), "default_min_score", 0.5))
