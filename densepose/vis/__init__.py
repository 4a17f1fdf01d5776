"""Pictures of DensePose results: part colours, U/V maps and isolines, texture transfer, boxes, grids,
several kinds layered in one picture with a colour legend.

Everything takes and returns RGB uint8 NumPy arrays (H, W, 3); only Pillow is used for drawing.
"""
from densepose.vis.colors import colorize_parts, scalar_to_rgb, uv_to_rgb
from densepose.vis.draw import draw_boxes, draw_isolines, grayscale, make_grid, overlay
from densepose.vis.legend import draw_legend
from densepose.vis.render import VIS_KINDS, parse_kinds, render_layers, visualize
from densepose.vis.texture import default_atlas, load_atlas, sample_atlas, texture_transfer

__all__ = [
    "VIS_KINDS", "colorize_parts", "default_atlas", "draw_boxes", "draw_isolines", "draw_legend", "grayscale",
    "load_atlas", "make_grid", "overlay", "parse_kinds", "render_layers", "sample_atlas", "scalar_to_rgb",
    "texture_transfer", "uv_to_rgb", "visualize",
]
