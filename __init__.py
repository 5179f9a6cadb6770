"""Blender extension entry point: this repository's root is the extension's root, and the
code lives in the `mm_blender` package beside this file."""
from .mm_blender import register, unregister  # noqa: F401
