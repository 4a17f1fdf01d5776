"""Synthetic people with exact DensePose ground truth, rendered on the CPU from the Anny body model.

Modules, in the order data flows:
    raster       NumPy z-buffer: face id + perspective-correct barycentrics + depth per pixel
    poses        pose families (standing, walking, running, sitting, crouching, arms raised, bending)
    appearance   skin, hair, clothes with patterns, backgrounds, Lambert shading, blur/noise
    scene        ``Synthesizer.render(seed, index)``: people + camera + light -> image and dense maps
    groundtruth  DensePose-COCO fields per person (box, RLE, keypoints, dp_masks, k-means dp points)
    writer       resumable/shardable dataset writer, ``merge``
    preview      contact sheet

>>> from densepose.synth.raster import rasterize
>>> face_id, bary, depth = rasterize(verts_cam, faces, K, height, width)
"""
