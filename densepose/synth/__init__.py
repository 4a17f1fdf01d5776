"""Synthetic people with exact DensePose ground truth, rendered on the CPU from the Anny body model.

Modules, in the order data flows:
    raster       NumPy z-buffer: face id + perspective-correct barycentrics + depth per pixel
    poses        pose families (standing ... lying, arms crossed, sports)
    scene        ``Synthesizer.render(seed, index)``: configuration, body model, mode dispatch
    plain        the plain mode: bare bodies, painted clothes (``appearance``), Lambert light
    compose      the realistic mode: ``sample_scene`` (people, clothes, props, light) and
                 ``render_scene`` (rasterise, ground truth, shade, background, camera effects)
    camera       pinhole cameras and the random photographer (focal length, height, tilt, framing)
    layout       where people and props stand on the ground (occluders in front of people)
    garments*, makehuman   clothes and hair bound to the body (procedural and MakeHuman assets)
    layers       bodies under clothes: which surface a pixel shows, which body point labels it
    distractors, textures  props that are not people, and their procedural textures
    fabrics, skin, materials   cloth patterns, skin/face/hair colours, per-fragment shading
    hdri, lighting, shadows    environment maps, SH irradiance + key light, shadow maps
    backdrop     backgrounds (panorama view, photo, procedural) and ground shadows
    post         camera effects (defocus, motion blur, noise, white balance, grading, JPEG)
    groundtruth  DensePose-COCO fields per person (box, RLE, keypoints, dp_masks, k-means dp points)
    writer       resumable/shardable dataset writer, ``merge``
    preview      contact sheet

>>> from densepose.synth.raster import rasterize
>>> face_id, bary, depth = rasterize(verts_cam, faces, K, height, width)
"""
