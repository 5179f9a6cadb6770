"""bpy side: headless renders of a built scene (render.py: render_still, render_animation)."""
