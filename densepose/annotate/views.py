"""Step 2's pictures: the rest-pose body surface seen from several sides, framed on one part.

For every coarse part (1..14) we render the sides where it shows (front, back, the person's left
and right, and top or bottom for hands, feet and head), centred on the part, with the part's faces
in their chart colours, drawn over anything that would hide them, and its surroundings faded. The
surface point (face, barycentrics) of every pixel is kept, so a click at (px, py) in a view is a
point on the body surface, hence an (I, U, V). The legend's body diagram is made here too.

Views depend only on the surface, so they are rendered once per project and kept under
``PROJECT/views/<surface>-v<version>-<fingerprint>/``.
"""
from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from densepose.annotate.palms import palm_faces
from densepose.cache import atomic_write_bytes
from densepose.surface.parts import CHART_COLORS, CHART_TO_MASK_PART

VIEW_SIZE = 288
VIEWS_VERSION = 4  # bump when the pictures change: cached views live under views/<surface>-v<N>/
#: view name -> (camera forward direction, world direction shown up) in Anny's frame (Z up, the
#: person faces -Y, the person's left is +X). "left" looks at the person's left side.
VIEW_DIRECTIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "front": ((0, 1, 0), (0, 0, 1)),
    "back": ((0, -1, 0), (0, 0, 1)),
    "left": ((-1, 0, 0), (0, 0, 1)),
    "right": ((1, 0, 0), (0, 0, 1)),
    "top": ((0, 0, -1), (0, -1, 0)),
    "bottom": ((0, 0, 1), (0, -1, 0)),
}
#: candidate views of each coarse part: the four sides, plus top/bottom where soles, palms and crown
#: hide; those in which the part hardly shows are dropped when rendering
PART_VIEWS: dict[int, tuple[str, ...]] = {k: ("front", "back", "left", "right") for k in range(1, 15)}
PART_VIEWS.update({2: (*PART_VIEWS[2], "top", "bottom"), 3: (*PART_VIEWS[3], "top", "bottom"),
                   4: (*PART_VIEWS[4], "bottom"), 5: (*PART_VIEWS[5], "bottom"), 14: (*PART_VIEWS[14], "top")})
CAMERA_DISTANCE = 3.0  # metres: far enough that no body part lies behind the camera, near-orthographic
FILL = 0.42  # fraction of the view's half-size that the part's radius covers
MIN_PART_PIXELS = 150  # a view showing less of its part (it faces away) is left out
MIN_PART_SHARE = 0.1  # ... or less than this share of the best view's part pixels
CONTEXT = 1.6  # faces farther than this many part radii from the part are not drawn (no far occluders)


@dataclass
class View:
    """One rendered view.

    Attributes:
        name: a ``VIEW_DIRECTIONS`` name.
        rgb: (H, W, 3) uint8 picture.
        face: (H, W) int32 face index of each pixel, -1 off the body.
        bary: (H, W, 3) float32 barycentric weights of each pixel's surface point.
    """

    name: str
    rgb: np.ndarray
    face: np.ndarray
    bary: np.ndarray

    def surface_point(self, px: float, py: float, allowed: np.ndarray | None = None,
                      search: int = 3) -> tuple[int, np.ndarray] | None:
        """The surface point under pixel (px, py), or of the nearest body pixel within ``search``.

        ``allowed`` (F,) bool limits the answer to those faces (a part's), or None for any face.
        """
        h, w = self.face.shape
        x, y = int(np.floor(px)), int(np.floor(py))
        if not (0 <= x < w and 0 <= y < h):
            return None
        y0, y1, x0, x1 = max(0, y - search), min(h, y + search + 1), max(0, x - search), min(w, x + search + 1)
        win = self.face[y0:y1, x0:x1]
        ok = win >= 0
        if allowed is not None:
            ok &= allowed[np.maximum(win, 0)]
        ys, xs = np.nonzero(ok)
        if len(ys) == 0:
            return None
        k = np.argmin((ys + y0 - y) ** 2 + (xs + x0 - x) ** 2)
        yy, xx = ys[k] + y0, xs[k] + x0
        return int(self.face[yy, xx]), self.bary[yy, xx].astype(np.float64)

    def face_at(self, px: float, py: float) -> int:
        """The face under pixel (px, py), -1 off the body or outside the view."""
        h, w = self.face.shape
        x, y = int(np.floor(px)), int(np.floor(py))
        return int(self.face[y, x]) if 0 <= x < w and 0 <= y < h else -1

    def where(self, face: int) -> list[float] | None:
        """Where surface face ``face`` shows in this view ([px, py], its visible pixels' centre), or None."""
        ys, xs = np.nonzero(self.face == face)
        if len(ys) == 0:
            return None
        return [float(xs.mean()) + 0.5, float(ys.mean()) + 0.5]


def look_at(target: np.ndarray, view: str, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """World -> camera (OpenCV: x right, y down, z forward) rotation R (3,3) and translation t (3,)
    for the named view (``VIEW_DIRECTIONS``) of ``target`` from ``distance`` metres."""
    forward, up = (np.asarray(v, dtype=np.float64) for v in VIEW_DIRECTIONS[view])
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    eye = target - distance * forward
    return R, -R @ eye


def render_view(vertices: np.ndarray, faces: np.ndarray, face_rgb: np.ndarray, R: np.ndarray, t: np.ndarray,
                focal: float, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise a mesh with flat per-face colours and head-light shading.

    Returns rgb (size, size, 3) uint8 (white background), face (size, size) int32, bary (size, size, 3) float32.
    """
    from densepose.synth.raster import rasterize

    verts_cam = vertices @ R.T + t  # (V, 3)
    K = np.array([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]])
    face_id, bary, _ = rasterize(verts_cam, faces, K, size, size)
    tri = verts_cam[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    centre = tri.mean(1)
    view_dir = centre / np.linalg.norm(centre, axis=1, keepdims=True)
    shade = 0.35 + 0.65 * np.abs((normal * view_dir).sum(1))  # (F,)
    shaded = np.clip(face_rgb * shade[:, None], 0, 255)
    rgb = np.full((size, size, 3), 255, dtype=np.uint8)
    fg = face_id >= 0
    rgb[fg] = shaded[face_id[fg]].astype(np.uint8)
    return rgb, face_id, bary


CONTEXT_TINT = 0.25  # how much of its own colour a neighbouring part keeps in the grey
PALM_TINT = 0.45  # how far the palm side of a hand is lightened toward white


def part_face_colors(face_part: np.ndarray, part: int, palm: np.ndarray | None = None) -> np.ndarray:
    """(F, 3) float colours: the part's faces in their chart colours, the rest of the body grey with
    a faint tint of each chart's colour (so that the left and right leg, or the torso's front and
    back, stay distinguishable as context); faces flagged in ``palm`` (F,) bool drawn lighter."""
    in_part = CHART_TO_MASK_PART[face_part] == part
    rgb = (1 - CONTEXT_TINT) * 150.0 + CONTEXT_TINT * CHART_COLORS[face_part].astype(np.float64)
    rgb[in_part] = CHART_COLORS[face_part[in_part]]
    if palm is not None:
        rgb[palm] = (1 - PALM_TINT) * rgb[palm] + PALM_TINT * 255.0
    return rgb


def render_part_views(surface, part: int, size: int = VIEW_SIZE) -> list[View]:
    """The views (``PART_VIEWS[part]``) of coarse part ``part`` (1..14) of ``surface`` in its rest pose.

    Only the part and its surroundings (``CONTEXT`` part radii) are drawn, and the part is drawn
    over anything in front of it (the other leg in a side view), so every view shows the whole
    part; its neighbours give the context. The palm side of the hands (``palms``) is drawn lighter.
    """
    verts = np.asarray(surface.vertices, dtype=np.float64)
    faces = np.asarray(surface.faces, dtype=np.int64)
    face_part = np.asarray(surface.face_part, dtype=np.int64)
    in_part = CHART_TO_MASK_PART[face_part] == part
    pv = verts[np.unique(faces[in_part])]
    centre = (pv.min(0) + pv.max(0)) / 2
    radius = max(float(np.linalg.norm(pv - centre, axis=1).max()), 0.02)
    near = in_part | (np.linalg.norm(verts[faces].mean(1) - centre, axis=1) < CONTEXT * radius)
    drawn = np.flatnonzero(near)
    own = np.flatnonzero(in_part)
    focal = FILL * size * CAMERA_DISTANCE / radius
    palm = palm_faces(verts, faces, face_part)
    colors = part_face_colors(face_part[drawn], part, palm[drawn])
    views = []
    for name in PART_VIEWS[part]:
        R, t = look_at(centre, name, CAMERA_DISTANCE)
        rgb, face_id, bary = render_view(verts, faces[drawn], colors, R, t, focal, size)
        face_id = np.where(face_id >= 0, drawn[np.maximum(face_id, 0)], -1).astype(np.int32)
        # the part alone, pasted over its occluders
        p_rgb, p_face, p_bary = render_view(verts, faces[own], part_face_colors(face_part[own], part, palm[own]), R, t, focal, size)
        top = p_face >= 0
        rgb[top], bary[top] = p_rgb[top], p_bary[top]
        face_id[top] = own[p_face[top]]
        views.append(View(name, rgb, face_id, bary))
    shown = [int(np.count_nonzero(in_part[np.maximum(v.face, 0)] & (v.face >= 0))) for v in views]
    return [v for v, n in zip(views, shown) if n >= max(MIN_PART_PIXELS, MIN_PART_SHARE * max(shown))]


class ViewStore:
    """Rendered part views of one surface, kept on disk under ``root`` and in memory."""

    def __init__(self, root: Path, get_surface):
        self.root = Path(root)
        self.get_surface = get_surface
        self._views: dict[int, list[View]] = {}
        self._lock = threading.Lock()

    def views(self, part: int) -> list[View]:
        if part not in PART_VIEWS:
            raise KeyError(part)
        with self._lock:
            if part not in self._views:
                self._views[part] = self._load_or_render(part)
            return self._views[part]

    def view(self, part: int, name: str) -> View:
        for v in self.views(part):
            if v.name == name:
                return v
        raise KeyError(name)

    def marks(self, part: int, face: int) -> dict[str, list[float] | None]:
        """Where surface face ``face`` shows in each view of ``part`` (None where it is hidden)."""
        return {v.name: v.where(face) for v in self.views(part)}

    def png(self, part: int, name: str) -> bytes:
        self.view(part, name)  # KeyError for a view the part does not have
        return (self.root / f"part{part:02d}_{name}.png").read_bytes()

    def _load_or_render(self, part: int) -> list[View]:
        npz = self.root / f"part{part:02d}.npz"
        if npz.is_file():
            with np.load(npz) as z:
                names = [str(n) for n in z["names"]]
                out = []
                for i, n in enumerate(names):
                    b = z["bary"][i].astype(np.float32)
                    bary = np.concatenate([b, 1.0 - b.sum(-1, keepdims=True)], -1)
                    rgb = np.asarray(Image.open(self.root / f"part{part:02d}_{n}.png").convert("RGB"))
                    out.append(View(n, rgb, z["face"][i], bary))
                return out
        views = render_part_views(self.get_surface(), part)
        for v in views:
            buf = io.BytesIO()
            Image.fromarray(v.rgb).save(buf, format="PNG")
            atomic_write_bytes(self.root / f"part{part:02d}_{v.name}.png", buf.getvalue())
        buf = io.BytesIO()
        # two barycentrics in float32 are enough (the third is 1 - both); saves a third of the file
        np.savez_compressed(buf, names=np.array([v.name for v in views]), face=np.stack([v.face for v in views]),
                            bary=np.stack([v.bary[..., :2] for v in views]).astype(np.float32))
        atomic_write_bytes(npz, buf.getvalue())
        return views


def part_colors() -> np.ndarray:
    """(15, 3) uint8: one colour per coarse part (its first chart's), row 0 unused. The app's legend
    uses the same colours."""
    out = np.zeros((15, 3), dtype=np.uint8)
    for k in range(1, 15):
        out[k] = CHART_COLORS[int(np.flatnonzero(CHART_TO_MASK_PART == k)[0])]
    return out


def body_diagram(surface, size: int = 260) -> np.ndarray:
    """The legend's body diagram: the rest-pose body from the front and the back, each coarse part
    in its colour, with the person's left (L) and right (R) marked. (size * 1.2, 2 * size, 3) uint8."""
    from PIL import ImageDraw, ImageFont

    verts = np.asarray(surface.vertices, dtype=np.float64)
    faces = np.asarray(surface.faces, dtype=np.int64)
    colors = part_colors()[CHART_TO_MASK_PART[np.asarray(surface.face_part, dtype=np.int64)]].astype(np.float64)
    centre = (verts.min(0) + verts.max(0)) / 2
    radius = float(np.linalg.norm(verts - centre, axis=1).max())
    top = int(size * 0.2)
    canvas = Image.new("RGB", (2 * size, size + top), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(12, size // 10))
    for i, (name, left_on_right) in enumerate((("front", True), ("back", False))):
        R, t = look_at(centre, name, CAMERA_DISTANCE)
        rgb, _, _ = render_view(verts, faces, colors, R, t, 0.5 * size * CAMERA_DISTANCE / radius, size)
        canvas.paste(Image.fromarray(rgb), (i * size, top))
        draw.text((i * size + size // 2, 2), name, fill=(0, 0, 0), font=font, anchor="mt")
        y = top + size // 2
        draw.text((i * size + 4, y), "L" if not left_on_right else "R", fill=(200, 0, 0), font=font, anchor="lm")
        draw.text((i * size + size - 4, y), "L" if left_on_right else "R", fill=(200, 0, 0), font=font, anchor="rm")
    return np.asarray(canvas)


def body_diagram_png(store: "ViewStore", surface) -> bytes:
    """``body_diagram`` as PNG bytes, rendered once and kept beside the views."""
    path = store.root / "diagram.png"
    if not path.is_file():
        buf = io.BytesIO()
        Image.fromarray(body_diagram(surface)).save(buf, format="PNG")
        atomic_write_bytes(path, buf.getvalue())
    return path.read_bytes()


def views_dir(project: Path, surface) -> Path:
    """Where a project keeps the rendered views of ``surface``.

    The folder name carries a fingerprint of the mesh and its charts: pixels store face ids, so
    views rendered from another version of the surface must never be reused.
    """
    h = hashlib.sha1()
    for arr in (surface.faces, surface.face_part, surface.vertices):
        h.update(np.ascontiguousarray(arr).tobytes())
    return Path(project) / "views" / f"{surface.name}-v{VIEWS_VERSION}-{h.hexdigest()[:12]}"
