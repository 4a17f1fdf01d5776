"""Python API: load a model and get one `PersonResult` per detected person.

    >>> import densepose.api
    >>> model = densepose.api.load()                 # bundled light model (densepose/assets/model_light.pt)
    >>> people = model("photo.jpg")                  # path, PIL image or RGB uint8 array (H, W, 3)
    >>> people[0].box, people[0].score, people[0].labels.shape
    >>> iuv = people[0].iuv_image(H, W)              # uint8 (H, W, 3) [I, U*255, V*255], box pasted in place
    >>> ys, xs, xyz = people[0].surface_xyz()        # 3D points on the Anny body for every body pixel

Post-processing follows the reference (detectron2's chart converter): the 112x112 maps of a
detection are resized bilinearly (``align_corners=False``) to the integer box size
(``int(x0), int(y0)``, ``max(int(w), 1)``, ``max(int(h), 1)``); the label is
``argmax(fine) * (argmax(coarse) > 0)`` and U, V are read from that label's channel.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from densepose.errors import UserError
from densepose.modeling.postprocess import densepose_to_labels_uv, int_box

#: Where the bundled model and demo images live (tests monkeypatch this).
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
BUNDLED_MODEL = "model_light.pt"
#: fp32, bf16 autocast (1.5x faster on CPUs with AVX512-BF16/AMX, same accuracy: MODELS.md), or auto:
#: bf16 on such CPUs, fp32 elsewhere (bf16 is emulated, hence slower, on older CPUs).
PRECISIONS = ("auto", "fp32", "bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU lists AVX512-BF16 or AMX-BF16 (read from /proc/cpuinfo; False elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on a CPU with fast bf16, else ``fp32``; other values unchanged."""
    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cpu" and cpu_has_fast_bf16() else "fp32"
    return precision


@dataclass
class PersonResult:
    """One detected person.

    Attributes:
        box: (4,) float32 xyxy in pixels of the image given to the model.
        score: detection score.
        labels: (h, w) uint8 chart index 0..24 (0 = background) at integer box size.
        u, v: (h, w) float32 in [0, 1] (0 on background).
        origin: (x0, y0) int pixel of ``labels[0, 0]`` in the image (``int`` of the box corner).
    """

    box: np.ndarray
    score: float
    labels: np.ndarray
    u: np.ndarray
    v: np.ndarray
    origin: tuple[int, int]

    @property
    def iuv(self) -> np.ndarray:
        """uint8 (3, h, w) [I, U*255, V*255]: the official quantised result (what ``uv_data`` encodes)."""
        from densepose.data.uv_encoding import quantize_iuv

        return quantize_iuv(self.labels, self.u, self.v)

    def paste_slices(self, height: int, width: int) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
        """(image slices, box-map slices) of the part of the box inside a (height, width) image."""
        x0, y0 = self.origin
        h, w = self.labels.shape
        ix0, iy0 = max(x0, 0), max(y0, 0)
        ix1, iy1 = min(x0 + w, width), min(y0 + h, height)
        if ix1 <= ix0 or iy1 <= iy0:
            return None
        return (slice(iy0, iy1), slice(ix0, ix1)), (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))

    def iuv_image(self, height: int, width: int) -> np.ndarray:
        """uint8 (height, width, 3) [I, U*255, V*255] with this person pasted at its box (0 elsewhere)."""
        out = np.zeros((height, width, 3), dtype=np.uint8)
        sl = self.paste_slices(height, width)
        if sl is not None:
            out[sl[0]] = self.iuv.transpose(1, 2, 0)[sl[1]]
        return out

    def pixels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Body pixels of this person: (ys, xs) int image coordinates, I (N,) int64, uv (N, 2) float64."""
        yy, xx = np.nonzero(self.labels)
        labels = self.labels[yy, xx].astype(np.int64)
        uv = np.stack([self.u[yy, xx], self.v[yy, xx]], axis=1).astype(np.float64)
        return yy + self.origin[1], xx + self.origin[0], labels, uv

    def surface_points(self, surface=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ys, xs, face (N,), bary (N, 3)): the exact body-surface point of every body pixel.

        ``surface`` is a `densepose.surface.BodySurface` (default: ``load_surface("anny")``).
        """
        surface = _default_surface() if surface is None else surface
        ys, xs, labels, uv = self.pixels()
        face, bary = surface.points_from_iuv(labels, uv)
        return ys, xs, face, bary

    def surface_xyz(self, surface=None, vertices: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ys, xs, xyz (N, 3)): body pixels mapped to 3D points on the surface (rest pose unless
        ``vertices`` (V, 3) of a posed mesh are given)."""
        surface = _default_surface() if surface is None else surface
        ys, xs, face, bary = self.surface_points(surface)
        return ys, xs, surface.xyz_from_points(face, bary, vertices=vertices)


@functools.lru_cache(maxsize=1)
def _default_surface():
    from densepose.surface import load_surface

    return load_surface("anny")


def compose(results: list[PersonResult], height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Full-image maps from per-person results: (labels uint8, u float32, v float32, inds uint8), each (H, W).

    ``inds`` is the instance index: 0 background, k = the k-th result by descending score (1 = best).
    Where boxes overlap, the higher-scoring person's body pixels win; a person's background pixels
    never overwrite another's body. Only the 255 best people fit in uint8 INDS; others are left out.
    """
    labels = np.zeros((height, width), np.uint8)
    u = np.zeros((height, width), np.float32)
    v = np.zeros((height, width), np.float32)
    inds = np.zeros((height, width), np.uint8)
    order = np.argsort([-r.score for r in results], kind="stable")[:255]
    # Paint the lowest score first so the best person ends on top.
    for rank in range(len(order) - 1, -1, -1):
        r = results[order[rank]]
        sl = r.paste_slices(height, width)
        if sl is None:
            continue
        img_sl, box_sl = sl
        body = r.labels[box_sl] > 0
        labels[img_sl][body] = r.labels[box_sl][body]
        u[img_sl][body] = r.u[box_sl][body]
        v[img_sl][body] = r.v[box_sl][body]
        inds[img_sl][body] = rank + 1
    return labels, u, v, inds


def chart_outputs_to_result(
    box: torch.Tensor, coarse: torch.Tensor, fine: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """One detection's maps -> (labels (h, w) uint8, u, v (h, w) float32, origin (x0, y0)).

    Args: box (4,) xyxy; coarse (C, S, S); fine, u, v (25, S, S). See `densepose.modeling.postprocess`.
    """
    x0, y0, _, _ = int_box(box.tolist())
    labels, uu, vv = densepose_to_labels_uv(coarse, fine, u, v, box.tolist())
    return labels.to(torch.uint8).cpu().numpy(), uu.cpu().numpy(), vv.cpu().numpy(), (x0, y0)


class Predictor:
    """Wraps a `DensePoseRCNN` (or any module honouring its eval contract) for RGB images.

    Images are resized (antialiased) so that the shorter side is ``min_size`` and the longer at
    most ``max_size`` (defaults: the model config's ``min_size_test`` and ``max_size``) before the
    model; boxes are mapped back, so every result is in the input image's pixels.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: str | torch.device = "cpu",
        min_score: float = 0.5,
        min_size: int | None = None,
        max_size: int | None = None,
        precision: str = "auto",
    ):
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = model.to(self.device).eval()
        self.min_score = float(min_score)
        cfg = getattr(model, "cfg", None)
        self.min_size = int(min_size or getattr(cfg, "min_size_test", 512))
        self.max_size = int(max_size or getattr(cfg, "max_size", 1333))
        if cfg is not None and hasattr(cfg, "min_size_test"):
            # The model resizes again internally: make it a no-op on our (antialiased) resize.
            cfg.min_size_test, cfg.max_size = self.min_size, self.max_size
        if cfg is not None and hasattr(cfg, "score_thresh_test"):
            # Drop low scores before the DensePose head runs, not after: its cost grows per box.
            cfg.score_thresh_test = float(np.nextafter(self.min_score, -np.inf))  # model keeps s > thresh

    def _prepare(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[float, float]]:
        h, w = image.shape[:2]
        scale = self.min_size / min(h, w)
        if max(h, w) * scale > self.max_size:
            scale = self.max_size / max(h, w)
        t = torch.from_numpy(np.array(image, copy=True)).to(self.device).permute(2, 0, 1).float()
        if abs(scale - 1.0) > 1e-3:
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
            t = F.interpolate(t[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=scale < 1)[0]
            return t, (nw / w, nh / h)
        return t, (1.0, 1.0)

    @torch.inference_mode()
    def forward(self, tensors: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """The model on prepared (3, H, W) tensors, in this predictor's precision (raw model outputs)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return self.model(tensors)

    @torch.inference_mode()
    def predict_batch(self, images: list[Any]) -> list[list[PersonResult]]:
        """Run the model on a list of images (arrays, PIL images or paths). Results sorted by score."""
        from densepose.io.images import image_to_array

        arrays = [image_to_array(im) for im in images]
        prepared = [self._prepare(a) for a in arrays]
        outputs = self.forward([t for t, _ in prepared])
        results = []
        for arr, (_, (sx, sy)), out in zip(arrays, prepared, outputs):
            h, w = arr.shape[:2]
            boxes = out["boxes"].float().cpu() / torch.tensor([sx, sy, sx, sy])
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
            scores = out["scores"].float()
            people = []
            for k in torch.argsort(scores, descending=True).tolist():
                if scores[k] < self.min_score:
                    continue
                labels, u, v, origin = chart_outputs_to_result(
                    boxes[k], out["coarse_segm"][k], out["fine_segm"][k], out["u"][k], out["v"][k]
                )
                people.append(PersonResult(boxes[k].cpu().numpy().astype(np.float32), float(scores[k]), labels, u, v, origin))
            results.append(people)
        return results

    def __call__(self, image: Any) -> list[PersonResult]:
        return self.predict_batch([image])[0]


def bundled_model_path() -> Path:
    return ASSETS_DIR / BUNDLED_MODEL


def build_model_from_checkpoint(path: str | os.PathLike) -> torch.nn.Module:
    """The `DensePoseRCNN` of a model file, checked (`densepose.modeling.model_file.load_model_file`)."""
    from densepose.modeling.model_file import load_model_file

    return load_model_file(path)


def load(
    path: str | os.PathLike | None = None,
    device: str = "cpu",
    min_score: float = 0.5,
    min_size: int | None = None,
    max_size: int | None = None,
    precision: str = "auto",
) -> Predictor:
    """A `Predictor` for the model file at ``path`` (default: the bundled light model)."""
    if path is None:
        path = bundled_model_path()
        if not path.is_file():
            raise UserError(
                f"the bundled weights {path} are not installed (this build ships without a trained model); "
                "pass a model file with --model PATH / load(path)"
            )
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return Predictor(build_model_from_checkpoint(path), device, min_score, min_size, max_size, precision)
