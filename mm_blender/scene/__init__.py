"""bpy side: ScenePlan -> Blender objects (build.py is the entry point: build, remove, find)."""
