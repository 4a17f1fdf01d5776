"""Reading inputs (images, folders, globs, videos) and writing outputs (PNG, NPZ, MP4) safely.

Every reader turns a bad file into ``densepose.errors.UserError`` naming the file, so a batch run
can report it and carry on with the next input.
"""
from densepose.io.images import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    encode_jpeg,
    encode_png,
    expand_inputs,
    image_to_array,
    load_image,
    to_rgb_uint8,
    write_png,
)

__all__ = [
    "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "encode_jpeg", "encode_png", "expand_inputs", "image_to_array",
    "load_image", "to_rgb_uint8", "write_png",
]
