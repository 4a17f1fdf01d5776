"""Video reading and MP4 writing through PyAV (``pip install av``; the ``video`` extra).

`iter_frames` yields decoded RGB frames one by one; when the stream breaks midway (a decoder
error, or fewer frames than the container header declares) it raises `VideoDecodeError` *after*
the good frames were yielded, so the caller keeps what decoded.
`Mp4Writer` encodes H.264 (yuv420p) into a temporary file that is renamed on `close()`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from densepose.cache import AtomicPath
from densepose.errors import UserError


class VideoDecodeError(UserError):
    """A video stopped decoding partway; ``frames_ok`` frames were delivered before the failure."""

    def __init__(self, message: str, frames_ok: int):
        super().__init__(message)
        self.frames_ok = frames_ok


def _import_av():
    try:
        import av  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise UserError("reading and writing video needs PyAV, a dependency of densepose: pip install av") from None
    return av


@dataclass
class VideoInfo:
    fps: float
    width: int
    height: int
    num_frames: int  # 0 when the container does not say


def probe_video(path: str | os.PathLike) -> VideoInfo:
    av = _import_av()
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: file is empty (0 bytes)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"{path}: contains no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or 25
            return VideoInfo(float(rate), stream.codec_context.width, stream.codec_context.height, int(stream.frames or 0))
    except UserError:
        raise
    except Exception as exc:  # PyAV raises av.error.* (subclasses of OSError/ValueError) for bad files
        raise UserError(f"{path}: not a readable video ({exc.__class__.__name__}: {exc})") from None


def iter_frames(path: str | os.PathLike, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Yield RGB uint8 (H, W, 3) frames. Raises `VideoDecodeError` when decoding fails midway."""
    av = _import_av()
    path = Path(path)
    info = probe_video(path)  # clear errors for missing/empty/non-video files
    count = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
                count += 1
                if max_frames is not None and count >= max_frames:
                    return
    except GeneratorExit:
        raise
    except Exception as exc:
        raise VideoDecodeError(
            f"{path}: decoding failed after {count} frame(s) ({exc.__class__.__name__}: {exc}); kept the decoded frames",
            count,
        ) from None
    if count == 0:
        raise VideoDecodeError(f"{path}: no frame could be decoded", 0)
    if info.num_frames and count < info.num_frames:
        # A truncated file often just ends: compare with the frame count the container declares.
        raise VideoDecodeError(
            f"{path}: stream ended after {count} of the {info.num_frames} frames its header declares "
            "(truncated file?); kept the decoded frames",
            count,
        )


class Mp4Writer:
    """Write RGB uint8 frames to an MP4 (H.264, yuv420p; odd sizes are padded by one pixel)."""

    def __init__(self, path: str | os.PathLike, fps: float, crf: int = 23):
        self.av = _import_av()
        self.path = Path(path)
        self.target = AtomicPath(self.path, suffix=".mp4")
        self.fps = fps
        self.crf = crf
        try:
            self.container = self.av.open(str(self.target.tmp), mode="w", format="mp4", options={"movflags": "faststart"})
        except BaseException:
            self.target.discard()
            raise
        self.stream = None
        self.frames = 0

    def _open_stream(self, width: int, height: int) -> None:
        from fractions import Fraction

        rate = Fraction(self.fps).limit_denominator(1001)
        codec = "libx264" if "libx264" in self.av.codecs_available else "mpeg4"
        self.stream = self.container.add_stream(codec, rate=rate)
        self.stream.width = width + width % 2
        self.stream.height = height + height % 2
        self.stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self.stream.options = {"crf": str(self.crf), "preset": "veryfast"}

    def write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if self.stream is None:
            self._open_stream(w, h)
        if (h + h % 2, w + w % 2) != (self.stream.height, self.stream.width):
            raise ValueError(f"frame size {w}x{h} differs from the first frame's")
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        vf = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self.stream.encode(vf):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush, close and move the file into place (nothing is written when no frame came)."""
        try:
            if self.stream is not None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
            self.container.close()
            if self.frames:
                self.target.commit()
        finally:
            self.target.discard()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:
            pass
        self.target.discard()

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
