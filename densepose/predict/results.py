"""What the predictor returns: `PersonResult` per person, `ImageResult` per image, and `compose`.

Post-processing follows the reference (detectron2's chart converter): the 112x112 maps of a
detection are resized bilinearly (``align_corners=False``) to the integer box size
(``int(x0), int(y0)``, ``max(int(w), 1)``, ``max(int(h), 1)``); the label is
``argmax(fine) * (argmax(coarse) > 0)`` and U, V are read from that label's channel.
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from densepose.modeling.postprocess import densepose_to_labels_uv, int_box


@dataclass
class PersonResult:
    """One detected person.

    Attributes:
        box: (4,) float32 xyxy in pixels of the input image.
        score: detection score.
        labels: (h, w) uint8 chart index 0..24 (0 = background) at the integer size of the maps'
            box (``map_box``, else ``box``).
        u, v: (h, w) float32 in [0, 1] (0 on background).
        origin: (x0, y0) int pixel of ``labels[0, 0]`` in the image (``int`` of that box's corner).
        chart: the body surface the labels and U, V refer to (``anny``, or ``smpl`` for detectron2 models).
        confidences: name -> (h, w) float32 confidence maps at box size (models that predict them).
        facing: probability that the person faces the camera (models with a facing classifier,
            ``densepose.modeling.facing``; 0.5 for a person seen from the side), else None.
        map_box: (4,) float32 xyxy of the region the maps cover, when it is not ``box``: models
            whose DensePose head reads a grown box (``ModelConfig.dp_margin_x``), else None.
        dense_score: ``score`` times the DensePose head's certainty of this person's maps, which
            ranks people by how right their parts and U, V are likely to be (models with
            ``ModelConfig.dense_score_on``, `densepose.modeling.dense_score`), else None. The COCO
            results' ``score`` when set.
    """

    box: np.ndarray
    score: float
    labels: np.ndarray
    u: np.ndarray
    v: np.ndarray
    origin: tuple[int, int]
    chart: str = "anny"
    confidences: dict[str, np.ndarray] = field(default_factory=dict)
    facing: float | None = None
    map_box: np.ndarray | None = None
    dense_score: float | None = None

    @property
    def maps_box(self) -> np.ndarray:
        """(4,) xyxy of the region the maps cover: ``map_box``, else ``box``."""
        return self.box if self.map_box is None else self.map_box

    @property
    def ranking_score(self) -> float:
        """The score DensePose AP ranks this person by, the COCO results' ``score``: ``dense_score``,
        else ``score``."""
        return self.score if self.dense_score is None else self.dense_score

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

        ``surface`` is a `densepose.surface.BodySurface` (default: ``load_surface(self.chart)``).
        """
        surface = _default_surface(self.chart) if surface is None else surface
        ys, xs, labels, uv = self.pixels()
        face, bary = surface.points_from_iuv(labels, uv)
        return ys, xs, face, bary

    def surface_xyz(self, surface=None, vertices: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ys, xs, xyz (N, 3)): body pixels mapped to 3D points on the surface (rest pose unless
        ``vertices`` (V, 3) of a posed mesh are given)."""
        surface = _default_surface(self.chart) if surface is None else surface
        ys, xs, face, bary = self.surface_points(surface)
        return ys, xs, surface.xyz_from_points(face, bary, vertices=vertices)


@functools.lru_cache(maxsize=2)
def _default_surface(chart: str):
    from densepose.surface import load_surface

    return load_surface(chart)


class ImageResult(list):
    """The people found in one image (a list of `PersonResult`, best score first) and that image.

    >>> res = predictor("photo.jpg")
    >>> len(res), res[0].box                      # a list of people
    >>> pic = res.plot("parts,contours,boxes")    # RGB uint8 picture with a colour legend
    >>> res.save("photo_vis.jpg")                 # the same picture as a file (.jpg or .png)
    >>> res.to_json(image_id=7)                   # COCO results, official uv_data encoding
    """

    def __init__(self, people: list[PersonResult], image: np.ndarray | None = None,
                 frame_size: tuple[int, int] | None = None):
        super().__init__(people)
        self.image = image  #: RGB uint8 (H, W, 3) the people were found in
        #: (h, w) of the pixels the results are in: the image's size, or the original size of a
        #: picture that was decoded downscaled (`densepose.io.images.read_image`).
        self.frame_size = tuple(frame_size) if frame_size is not None else (None if image is None else image.shape[:2])

    def maps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(labels, u, v, inds) aligned with ``image`` (see `compose`; sampled down from the frame when larger)."""
        h, w = self._image().shape[:2]
        return compose_at(self, self.frame_size or (h, w), (h, w))

    def plot(self, kinds: str | tuple[str, ...] = "parts,contours,boxes", legend: bool = True,
             atlas: np.ndarray | None = None) -> np.ndarray:
        """RGB uint8 picture: ``kinds`` (comma-separated or a tuple, see `densepose.vis.render`) layered on the image."""
        from densepose.vis.render import parse_kinds, render_layers

        kinds = parse_kinds(kinds) if isinstance(kinds, str) else tuple(kinds)
        labels, u, v, _ = self.maps()
        image = self._image()
        boxes = boxes_in_picture(self, self.frame_size or image.shape[:2], image.shape[:2])
        return render_layers(image, labels, u, v, kinds, boxes=boxes, scores=[p.score for p in self],
                             atlas=atlas, legend="present" if legend else None)

    def save(self, path: str | os.PathLike, kinds: str | tuple[str, ...] = "parts,contours,boxes", legend: bool = True) -> Path:
        """Write `plot` to ``path`` (.png lossless, .jpg/.jpeg JPEG), atomically; returns the path."""
        from densepose.cache import atomic_write_bytes
        from densepose.errors import UserError
        from densepose.io.images import encode_jpeg, encode_png

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".png", ".jpg", ".jpeg"):
            raise UserError(f"{path}: save a picture as .png or .jpg")
        pic = self.plot(kinds, legend)
        atomic_write_bytes(path, encode_png(pic) if suffix == ".png" else encode_jpeg(pic))
        return path

    def to_json(self, image_id: int = 0, file_name: str | None = None) -> str:
        """COCO DensePose results of this image as a JSON string (see `densepose.predict.writers.coco_records`)."""
        from densepose.predict.writers import coco_records

        return json.dumps(coco_records(list(self), image_id, file_name))

    def _image(self) -> np.ndarray:
        if self.image is None:
            raise ValueError("this result carries no image (build it with ImageResult(people, image))")
        return self.image


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


def compose_at(results: list[PersonResult], frame_size: tuple[int, int], size: tuple[int, int]):
    """`compose` in a (fh, fw) frame, read at the pixel centres of a (h, w) picture of that frame (nearest)."""
    return sample_maps(compose(results, *frame_size), size)


def boxes_in_picture(results: list[PersonResult], frame_size: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """(N, 4) xyxy boxes of ``results``, which are in a (fh, fw) frame, in the pixels of an (h, w)
    picture of that frame (a smaller decode of it, as `sample_maps` reads the maps)."""
    (fh, fw), (h, w) = frame_size, size
    boxes = np.array([r.box for r in results], np.float32).reshape(-1, 4)
    return boxes * np.array([w / fw, h / fh, w / fw, h / fh], np.float32)


def sample_maps(maps: tuple[np.ndarray, ...], size: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """(H, W) maps -> (h, w), each output pixel taking the map pixel under its centre (labels stay labels)."""
    fh, fw = maps[0].shape[:2]
    if (fh, fw) == tuple(size):
        return tuple(maps)
    ys = np.minimum(((np.arange(size[0]) + 0.5) * fh / size[0]).astype(np.intp), fh - 1)
    xs = np.minimum(((np.arange(size[1]) + 0.5) * fw / size[1]).astype(np.intp), fw - 1)
    return tuple(np.ascontiguousarray(m[ys][:, xs]) for m in maps)


def chart_outputs_to_result(
    box: torch.Tensor, coarse: torch.Tensor, fine: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """One detection's maps -> (labels (h, w) uint8, u, v (h, w) float32, origin (x0, y0)).

    Args: box (4,) xyxy; coarse (C, S, S); fine, u, v (25, S, S). See `densepose.modeling.postprocess`.
    """
    x0, y0, _, _ = int_box(box.tolist())
    labels, uu, vv = densepose_to_labels_uv(coarse, fine, u, v, box.tolist())
    return labels.to(torch.uint8).cpu().numpy(), uu.cpu().numpy(), vv.cpu().numpy(), (x0, y0)
