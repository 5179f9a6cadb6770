"""Blender extension entry point: this repository's root is the extension's root, and the
code lives in the `mm_blender` package beside this file."""
# Blender imports this folder as a package (bl_ext.<repo>.mm_blender). Test runners may import
# the file on its own (pytest treats the repository root as a package when its folder name
# is not a valid identifier, e.g. a clone in `ci-check/`): then there is nothing to register.
if __package__:
    from .mm_blender import register, unregister  # noqa: F401
