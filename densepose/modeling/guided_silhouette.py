"""Each person's silhouette moved onto the image's edges: the last step after the maps become labels.

The DensePose head's body-against-background maps are soft and coarse at their edges, and a
person's outline comes out a pixel or two off, mostly too wide (MODELS.md, "Where the silhouettes
lose mask IoU"). The person's body mask, filtered with the image itself as guide
(`densepose.modeling.guided_filter`), keeps its values inside regions of even colour and
changes them across colour edges; where the filtered mask reaches ``threshold`` is the new body.
Pixels it adds take the chart and U, V of the nearest body pixel; pixels it drops become background.
The filter fits its coefficients on the image shrunk by half the radius (the fast guided filter),
which keeps its cost per person small whatever the image's size.

Settings (`densepose.modeling.config.ModelConfig`): ``guided_radius`` in pixels of the image
resized as the model reads it (shorter side ``min_size_test``, longer at most ``max_size``;
0: off), scaled to each image's own pixels; ``guided_eps``, ``guided_threshold``.
"""
from __future__ import annotations

import numpy as np

from densepose.modeling.guided_filter import guided_filter
from densepose.modeling.transform import resize_shape


def radius_in_image(radius: float, image_hw: tuple[int, int], min_size: int, max_size: int) -> int:
    """``radius`` in pixels of the image as the model resizes it (`densepose.modeling.transform.resize_shape`:
    shorter side ``min_size``, longer at most ``max_size``) -> pixels of the (h, w) image, >= 1."""
    longer = max(image_hw)
    return max(1, round(radius * longer / max(resize_shape(*image_hw, min_size, max_size))))


def image_under(image: np.ndarray, frame_hw: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    """The (H, W, 3) ``image``'s pixels under ``rows`` x ``cols`` of the (fh, fw) frame it shows
    (the image may be a smaller decode of it) -> (len rows, len cols, 3), each frame pixel taking
    the image pixel under its centre."""
    fh, fw = frame_hw
    h, w = image.shape[:2]
    if (h, w) == (fh, fw):
        return image[rows, cols]
    ys = np.minimum(((np.arange(rows.start, rows.stop) + 0.5) * h / fh).astype(np.intp), h - 1)
    xs = np.minimum(((np.arange(cols.start, cols.stop) + 0.5) * w / fw).astype(np.intp), w - 1)
    return image[ys][:, xs]


def nearest_body(body: np.ndarray, ys: np.ndarray, xs: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """The nearest True pixel of ``body`` (H, W) to each pixel (ys, xs), searched in rings of
    growing distance up to ``reach`` (a square window) -> (N,) rows and columns; a pixel with none
    in reach gets itself. The pixels are few (the outline's), so this beats a distance transform of the box."""
    h, w = body.shape
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    order = np.argsort(dy * dy + dx * dx, axis=None, kind="stable")
    from_y, from_x = ys.copy(), xs.copy()
    todo = np.arange(len(ys))
    for oy, ox in zip(dy.ravel()[order].tolist(), dx.ravel()[order].tolist()):
        if not len(todo):
            break
        ty, tx = ys[todo] + oy, xs[todo] + ox
        hit = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
        hit[hit] = body[ty[hit], tx[hit]]
        from_y[todo[hit]], from_x[todo[hit]] = ty[hit], tx[hit]
        todo = todo[~hit]
    return from_y, from_x


def snap_silhouette(image: np.ndarray, frame_hw: tuple[int, int], labels: np.ndarray, maps: tuple[np.ndarray, ...],
                    origin: tuple[int, int], radius: int, eps: float, threshold: float
                    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """One person's labels moved onto the image's edges (module docstring).

    Args:
        image: (H, W, 3) uint8 RGB showing the (fh, fw) ``frame_hw`` the labels are in.
        labels: (h, w) chart indices (0: background) whose top-left pixel is ``origin`` (x0, y0) of the frame.
        maps: arrays (h, w) that go with the labels (U and V), read where the labels are read.
        radius: the guided filter's window half-size in frame pixels (`radius_in_image`).
    Returns:
        new (labels, maps), of the same shapes and dtypes; the parts outside the frame as they were.
    """
    fh, fw = frame_hw
    h, w = labels.shape
    x0, y0 = origin
    # Only pixels within 2 radius of the body can change (further out, every window of every window
    # around a pixel is background), and those read the image within 2 radius of themselves: the
    # box 4 radius around the body gives the filter of the whole map box.
    ys, xs = np.nonzero(labels > 0)
    reach = 4 * radius + 1
    top, bottom = max(ys.min(initial=h) - reach, -y0, 0), min(ys.max(initial=-1) + reach + 1, fh - y0, h)
    left, right = max(xs.min(initial=w) - reach, -x0, 0), min(xs.max(initial=-1) + reach + 1, fw - x0, w)
    if bottom <= top or right <= left:
        return labels, maps
    inside = (slice(top, bottom), slice(left, right))
    body = labels[inside] > 0
    under = image_under(image, frame_hw, slice(y0 + top, y0 + bottom), slice(x0 + left, x0 + right))
    guide = np.moveaxis(under, -1, 0).astype(np.float32) * np.float32(1 / 255)
    snapped = guided_filter(guide, body, radius, eps, subsample=max(1, radius // 2)) >= threshold
    if np.array_equal(snapped, body):
        return labels, maps
    ay, ax = np.nonzero(snapped & ~body)  # an added pixel reads the arrays at its nearest body pixel
    from_y, from_x = nearest_body(body, ay, ax, reach)
    out = []
    for array in (labels, *maps):
        new = array.copy()
        region = new[inside]
        region[ay, ax] = array[inside][from_y, from_x]
        region[~snapped] = 0
        out.append(new)
    return out[0], tuple(out[1:])


def snap_with_settings(cfg, image: np.ndarray, frame_hw: tuple[int, int], labels: np.ndarray,
                       maps: tuple[np.ndarray, ...], origin: tuple[int, int]
                       ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """`snap_silhouette` with a model's settings (``cfg``: its `ModelConfig`; a model without them,
    a detectron2 file's, has it off); the labels and maps as they are when it is off."""
    radius = getattr(cfg, "guided_radius", 0)
    if not radius:
        return labels, maps
    pixels = radius_in_image(radius, frame_hw, cfg.min_size_test, cfg.max_size)
    return snap_silhouette(image, frame_hw, labels, maps, origin, pixels, cfg.guided_eps, cfg.guided_threshold)
