"""Where each rendered frame's time goes, and progress for long renders: frame n/N, the
time per frame and an estimate of the time left.

A frame of an animation render passes through: the frame change (keyframes and Geometry
Nodes evaluated), the Cycles scene sync (objects, attributes, BVH), sampling (path tracing
and denoising) and writing the file. `FrameClock` times these from Blender's render
handlers while a render runs; it is installed only for that render and removed after, so
nothing of it is saved with the .blend.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import bpy

Progress = Callable[[float, str], None]


@dataclass
class FrameTime:
    frame: int
    index: int            # 1-based position in the render
    count: int
    evaluate_s: float     # frame change: keyframes + depsgraph evaluation
    sync_s: float         # Cycles scene sync, BVH included
    sampling_s: float     # path tracing and denoising
    write_s: float        # image written
    total_s: float

    @property
    def scene_s(self) -> float:
        """Everything before sampling starts: evaluation and Cycles sync."""
        return self.evaluate_s + self.sync_s


def _median(values) -> float:
    return statistics.median(values) if values else 0.0


def summary(frames: list[FrameTime]) -> str:
    """One line: frames rendered and the median split of a frame."""
    if not frames:
        return "no frames rendered"
    med = {k: _median([getattr(f, k) for f in frames])
           for k in ("total_s", "evaluate_s", "sync_s", "sampling_s", "write_s")}
    return (f"{len(frames)} frames, {med['total_s']:.2f} s a frame (median): scene "
            f"{med['evaluate_s'] + med['sync_s']:.2f} s (evaluate {med['evaluate_s']:.2f}, "
            f"Cycles sync {med['sync_s']:.2f}), sampling {med['sampling_s']:.2f} s, "
            f"writing {med['write_s']:.2f} s")


class FrameClock:
    """Render handlers timing each frame of frames start..end; `with FrameClock(...)`."""

    _HANDLERS = ("render_pre", "frame_change_post", "render_stats", "render_post",
                 "render_write")

    def __init__(self, start: int, end: int, progress: Progress | None = None,
                 on_frame: Callable[[FrameTime], None] | None = None):
        self.start, self.count = start, end - start + 1
        self.progress, self.on_frame = progress, on_frame
        self.frames: list[FrameTime] = []
        self._marks: dict[str, float] = {}
        self._began = time.perf_counter()
        self._installed: list[tuple[str, Callable]] = []

    # handlers: each only records a time; a frame is closed when its image is written
    def _pre(self, *_):
        self._marks = {"pre": time.perf_counter()}

    def _evaluated(self, *_):
        self._marks.setdefault("evaluated", time.perf_counter())

    def _stats(self, stats, *_):
        # Cycles reports "... | Sample 1/16" once path tracing has begun
        if "sample" not in self._marks and "Sample " in str(stats):
            self._marks["sample"] = time.perf_counter()

    def _post(self, *_):
        self._marks["post"] = time.perf_counter()

    def _write(self, scene, *_):
        m = self._marks
        now = time.perf_counter()
        pre = m.get("pre", now)
        evaluated = m.get("evaluated", pre)
        post = m.get("post", now)
        sample = m.get("sample", evaluated)
        ft = FrameTime(frame=scene.frame_current, index=len(self.frames) + 1, count=self.count,
                       evaluate_s=evaluated - pre, sync_s=sample - evaluated,
                       sampling_s=post - sample, write_s=now - post, total_s=now - pre)
        self.frames.append(ft)
        self._marks = {}
        if self.on_frame:
            self.on_frame(ft)
        if self.progress:
            self.progress(ft.index / self.count, self.message(ft))

    def message(self, ft: FrameTime) -> str:
        per = (time.perf_counter() - self._began) / ft.index
        left = per * (self.count - ft.index)
        return (f"frame {ft.index}/{self.count} (frame {ft.frame}): {ft.total_s:.2f} s "
                f"(scene {ft.scene_s:.2f} s, sampling {ft.sampling_s:.2f} s), "
                f"about {_duration(left)} left")

    def __enter__(self):
        for name in self._HANDLERS:
            fn = {"render_pre": self._pre, "frame_change_post": self._evaluated,
                  "render_stats": self._stats, "render_post": self._post,
                  "render_write": self._write}[name]
            getattr(bpy.app.handlers, name).append(fn)
            self._installed.append((name, fn))
        self._began = time.perf_counter()
        return self

    def __exit__(self, *exc):
        for name, fn in self._installed:
            handlers = getattr(bpy.app.handlers, name)
            if fn in handlers:
                handlers.remove(fn)
        self._installed.clear()
        return False


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
