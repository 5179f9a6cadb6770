"""Real models as matrices: one attention head of GPT-2, SmolLM2 or MiniLM captured from a
forward pass (capture.py), with loaders per model family. numpy only; torch is optional."""

from .capture import Capture, attention_stats, capture_head, write_capture

__all__ = ["Capture", "attention_stats", "capture_head", "write_capture"]
