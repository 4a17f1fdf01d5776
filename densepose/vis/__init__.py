"""Pictures of DensePose results: part colours, U/V maps and isolines, texture transfer, boxes, grids.

Everything takes and returns RGB uint8 NumPy arrays (H, W, 3); only Pillow is used for drawing.
"""
from densepose.vis.colors import colorize_parts, scalar_to_rgb, uv_to_rgb
from densepose.vis.draw import draw_boxes, draw_isolines, grayscale, make_grid, overlay
from densepose.vis.render import VIS_KINDS, visualize
from densepose.vis.texture import default_atlas, load_atlas, sample_atlas, texture_transfer

__all__ = [
    "VIS_KINDS", "colorize_parts", "default_atlas", "draw_boxes", "draw_isolines", "grayscale", "load_atlas",
    "make_grid", "overlay", "sample_atlas", "scalar_to_rgb", "texture_transfer", "uv_to_rgb", "visualize",
]
