"""`densepose predict`: run a model over images, folders, globs and videos and write the chosen outputs.

Modules: `cpu` (bf16 flags, precision, default thread count), `results` (`PersonResult`,
`ImageResult`, `compose`), `predictor` (`Predictor`), `readers`, `writers`, `tracking` (video),
`image_ids` (COCO ids of results), `runner` (`run_predict`).

Output formats (``<stem>`` is the input file name without extension; written atomically). Every
output is in the pixels of the input file, also when a huge file was decoded downscaled:

``<stem>_IUV.png``
    3 x uint8 per pixel: I (chart 0..24, 0 = background), round(U * 255), round(V * 255). By
    default the file the original Detectron ``infer_simple.py`` writes: it saved the array
    [I, U*255, V*255] with OpenCV, so ``cv2.imread`` gives [I, U, V] and an RGB reader (Pillow,
    imageio) sees I in the *blue* channel. ``--iuv-layout rgb`` writes I in the red channel
    instead. `read_iuv_png` detects the layout (or is told it).
``<stem>_INDS.png``
    8-bit grayscale PNG: 0 background, k = the k-th person by descending score (1 = best). Where
    people overlap, the higher-scoring person's body is on top (also in the IUV picture). Unlike
    Detectron's INDS, no person gets index 0.
``<stem>.npz``
    ``boxes`` (N, 4) float32 xyxy, ``scores`` (N,) float32, ``dense_scores`` (N,) float32 (NaN for
    a model without them, `PersonResult.dense_score`), ``map_boxes`` (N, 4) float32 xyxy of
    the region each person's maps cover (the box itself, or the grown box a model's DensePose head
    read: ``dp_margin_x``), ``origins`` (N, 2) int32 pixel of each person map's top-left corner,
    ``image_size`` [H, W], ``file_name``, and per person k (0-based, by descending score)
    ``labels_k`` (h, w) uint8, ``u_k``, ``v_k`` (h, w) float32 at the integer size of its map box.
    Video frames add ``frame_index`` and ``track_ids``. No pickles: ``np.load`` works with the
    default ``allow_pickle=False``. Read back with `read_npz`.
``results.json`` (``--json``)
    COCO results in the official DensePose encoding (``bbox`` xywh, ``score``, ``uv_shape``,
    ``uv_data`` from `densepose.data.uv_encoding`), plus ``file_name``; ``bbox`` is the region the
    IUV covers, so for a model whose DensePose head reads grown boxes the detector's own box is
    ``detection_bbox`` (box AP of such a file measures the grown boxes); for a model that ranks
    people by their maps (``dense_score_on``) ``score`` is the dense score and the detector's own
    is ``detection_score``, which box AP reads; ``image_id`` by
    `densepose.predict.image_ids.assign_image_ids`: ``--coco-json`` (matched by file name), else
    the ``annotations.json`` of a ``densepose synth`` dataset the images come from, else the number
    of an all-digit name (``000000000785.jpg`` -> 785), else a CRC of the name; unique within a
    run and the same in every run. Videos get ``<stem>_results.json`` with ``image_id`` = frame
    index + 1.
``<stem>_<kinds>.jpg``
    Pictures: each ``--vis`` value (kinds joined by commas, e.g. ``parts,contours,boxes``) is one
    picture with its kinds layered and a colour legend on the right; see `densepose.vis.render`.
Videos: one annotated ``<stem>_<kinds>.mp4`` (H.264); per-frame outputs in ``<stem>_frames/``
(``<stem>_f000000_IUV.png`` etc.) only with ``--frame-outputs``. With ``--smooth W`` (0 <= W < 1)
detections are tracked across frames (greedy IoU >= 0.3 matching) and, per pixel, U and V become
``(1 - W) * current + W * previous`` where the pixel has the same chart and the same track as in
the previous (smoothed) frame; labels and boxes are not smoothed (no lag on silhouettes).
Smoothing changes the full-frame IUV/INDS PNGs, pictures and MP4; the NPZ and JSON keep the raw
per-frame results.
"""
from densepose.predict.cpu import PRECISIONS, cpu_has_fast_bf16, default_threads, resolve_precision
from densepose.predict.predictor import Predictor
from densepose.predict.readers import IUV_LAYOUTS, detect_iuv_layout, read_inds_png, read_iuv_png, read_npz
from densepose.predict.results import ImageResult, PersonResult, chart_outputs_to_result, compose
from densepose.predict.runner import RunSummary, run_predict, run_video, unique_out_dir
from densepose.predict.tracking import Tracker, UVSmoother
from densepose.predict.writers import OutputOptions, coco_records, iuv_png_array, npz_bytes, write_frame_outputs

__all__ = [
    "IUV_LAYOUTS", "ImageResult", "OutputOptions", "PRECISIONS", "PersonResult", "Predictor", "RunSummary", "Tracker",
    "UVSmoother", "chart_outputs_to_result", "coco_records", "compose", "cpu_has_fast_bf16", "default_threads",
    "detect_iuv_layout", "iuv_png_array", "npz_bytes", "read_inds_png", "read_iuv_png", "read_npz", "resolve_precision",
    "run_predict", "run_video", "unique_out_dir", "write_frame_outputs",
]
