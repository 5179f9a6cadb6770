"""`python -m mm_blender`: see mm_blender/cli.py."""
import sys

from .cli import main

sys.exit(main())
