"""Shared by the e2e tests: the environment for a Blender subprocess."""
import os
from pathlib import Path

import pytest


def _blender_env(tmp: Path) -> dict:
    """The environment for a bpy subprocess: Blender's user folders inside tmp."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for var, sub in (("BLENDER_USER_RESOURCES", "resources"),
                     ("BLENDER_USER_EXTENSIONS", "extensions"),
                     ("XDG_CACHE_HOME", "cache")):
        path = tmp / "blender_user" / sub
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    return env


@pytest.fixture(scope="session")
def blender_env():
    return _blender_env
