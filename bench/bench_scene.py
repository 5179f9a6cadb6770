"""Scene benchmark: plan -> Blender objects -> evaluated depsgraph, and a Cycles render.

Measured in one run, every number in a fresh subprocess (clean peak RSS, no warm caches):
  1. the floor: N points + one float attribute via foreach_set, one Geometry Nodes
     instancer, depsgraph evaluated -- the least any points-and-instancer scene costs;
  2. ours: `scene.build(plan)` of the ~1.1M-cell plan (preset attention_gaussian; a
     synthetic plan of the same size with --plan synthetic) to an evaluated depsgraph,
     and its ratio to the floor (aim: <= 3x and <= 2 s);
  3. the naive baseline: one object per cell through bpy.data, at 20k cells, against ours
     at 20k cells (same run);
  4. scaling: ours at 0.25M, 1M and 4M cells (synthetic): time and peak RSS;
  5. a Cycles CPU render of the 1.1M scene, 640x360, 16 samples: time and peak RSS, with
     cube cells (instances) and with sphere cells (a point cloud).
Times are the best of `--repeat` tries within a child (the first try pays one-off costs).

    python bench/bench_scene.py [--out BENCHMARKS.md] [--plan attention_gaussian|synthetic]
                                [--quick] [--no-render] [--repeat 3]

Prints the results as JSON; with --out, appends a markdown section to that file.
`run(...)` returns the same dict for bench/run.py.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCALING_SIZES = (250_000, 1_000_000, 4_000_000)
NAIVE_CELLS = 20_000
RENDER_RESOLUTION = (640, 360)
RENDER_SAMPLES = 16


# --- the parent: spawns one child per measurement --------------------------------------

def _child(task: str, **kwargs) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", task,
           "--child-args", json.dumps(kwargs)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("MMBENCH ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench child {task} {kwargs} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("MMBENCH "):])


def run(*, plan: str = "attention_gaussian", quick: bool = False, render: bool = True,
        repeat: int = 3, progress=print) -> dict:
    """All measurements; returns a dict of numbers (seconds, MB, ratios)."""
    sizes = (250_000,) if quick else SCALING_SIZES
    out: dict = {"plan": plan, "load_average": os.getloadavg()[0], "repeat": repeat,
                 "cpu_count": os.cpu_count()}

    progress(f"bench_scene: ours, {plan}")
    ours = _child("ours", plan=plan, repeat=repeat)
    out["ours"] = ours
    progress(f"bench_scene: floor, {ours['cells']} points")
    floor = _child("floor", cells=ours["cells"], repeat=repeat)
    out["floor"] = floor
    out["ours_over_floor"] = ours["build_eval_s"] / floor["build_eval_s"]

    progress(f"bench_scene: naive, {NAIVE_CELLS} objects")
    naive = _child("naive", cells=NAIVE_CELLS, repeat=1)
    out["naive"] = naive
    out["naive_over_ours_same_cells"] = naive["naive_s"] / naive["ours_s"]
    # Per-cell cost of the naive way, scaled to the big plan (it is linear or worse).
    out["naive_extrapolated_s"] = naive["naive_s"] / NAIVE_CELLS * ours["cells"]
    out["naive_extrapolated_over_ours"] = out["naive_extrapolated_s"] / ours["build_eval_s"]

    out["scaling"] = []
    for n in sizes:
        progress(f"bench_scene: scaling, {n} cells")
        out["scaling"].append(_child("ours", plan="synthetic", cells=n, repeat=1))

    if render:
        out["render"] = []
        for shape in ("cube", "sphere"):
            progress(f"bench_scene: Cycles render of {plan}, {shape} cells")
            out["render"].append(_child("render", plan=plan, shape=shape,
                                        resolution=list(RENDER_RESOLUTION),
                                        samples=RENDER_SAMPLES))
    return out


def markdown(r: dict) -> str:
    o, f, nv = r["ours"], r["floor"], r["naive"]
    lines = [
        "## Scene: plan to Blender objects (bench/bench_scene.py)",
        "",
        f"bpy {o['bpy']}, {r['cpu_count']} CPU cores, load average {r['load_average']:.1f} "
        f"at the start; best of {r['repeat']} tries per number, each measurement in a fresh "
        "process.",
        "",
        "| measurement | cells | time | peak RSS |",
        "|---|---:|---:|---:|",
        f"| floor: points + 1 attribute + GN instancer, depsgraph evaluated | {f['cells']:,} | "
        f"{f['build_eval_s']:.2f} s | {f['peak_rss_mb']:.0f} MB |",
        f"| ours: spec -> values -> plan (numpy, `{o['plan']}`) | {o['cells']:,} | "
        f"{o['plan_s']:.2f} s | |",
        f"| ours: `build(plan)` + depsgraph evaluated | {o['cells']:,} | "
        f"{o['build_eval_s']:.2f} s | {o['peak_rss_mb']:.0f} MB |",
        f"| **ours: spec to an evaluated depsgraph** | {o['cells']:,} | "
        f"**{o['plan_s'] + o['build_eval_s']:.2f} s** | |",
        f"| &nbsp;&nbsp;of which build (objects, attributes, decor, camera) | | "
        f"{o['build_s']:.2f} s | |",
        f"| &nbsp;&nbsp;of which depsgraph evaluation | | {o['eval_s']:.2f} s | |",
        f"| naive: one object per cell via bpy.data | {nv['cells']:,} | {nv['naive_s']:.2f} s | |",
        f"| ours at the same size | {nv['cells']:,} | {nv['ours_s']:.3f} s | |",
    ]
    for s in r["scaling"]:
        lines.append(f"| scaling: ours (synthetic plan) | {s['cells']:,} | "
                     f"{s['build_eval_s']:.2f} s | {s['peak_rss_mb']:.0f} MB |")
    for rd in r.get("render", []):
        kind = "instanced cubes" if rd["shape"] == "cube" else "spheres as a point cloud"
        lines.append(f"| Cycles CPU render {rd['resolution'][0]}x{rd['resolution'][1]}, "
                     f"{rd['samples']} samples, denoised, {kind} ({rd['plan']}) | "
                     f"{rd['cells']:,} | {rd['render_s']:.1f} s | {rd['peak_rss_mb']:.0f} MB |")
    lines += [
        "",
        f"- ours / floor: **{r['ours_over_floor']:.2f}x** for the Blender part (aim <= 3x); "
        f"{(o['plan_s'] + o['build_eval_s']) / f['build_eval_s']:.2f}x including the numpy "
        f"core; spec to evaluated depsgraph {o['plan_s'] + o['build_eval_s']:.2f} s "
        "(aim <= 2 s).",
        f"- naive / ours at {nv['cells']:,} cells: **{r['naive_over_ours_same_cells']:.0f}x**; "
        f"the naive way scaled linearly to {o['cells']:,} cells: "
        f"{r['naive_extrapolated_s']:.0f} s, {r['naive_extrapolated_over_ours']:.0f}x ours "
        "(deleting those objects again costs more still).",
        f"- RSS right after `import bpy`: {o['rss_after_import_mb']:.0f} MB.",
        "",
    ]
    return "\n".join(lines)


# --- the children: one measurement each, result as one `MMBENCH {json}` line -------------

def _isolate_blender() -> None:
    root = tempfile.mkdtemp(prefix="mm_bench_")
    for var, sub in (("BLENDER_USER_RESOURCES", "resources"),
                     ("BLENDER_USER_EXTENSIONS", "extensions"), ("XDG_CACHE_HOME", "cache")):
        os.environ.setdefault(var, os.path.join(root, sub))


def _peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KB on Linux


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def synthetic_plan(cells: int, name: str = "bench"):
    """`cells` cells as four square-ish matrices on the faces of a cube-like layout, with
    mm-like colours and sizes, row guides and labels (numpy only)."""
    import numpy as np

    from mm_blender.core.plan import LabelPlan, LinePlan, MatrixPlan, ScenePlan

    rng = np.random.default_rng(0)
    per = cells // 4
    side = max(int(np.sqrt(per)), 1)
    shapes = [(side, per // side)] * 3
    shapes.append((side, (cells - 3 * side * (per // side)) // side))
    leftover = cells - sum(r * c for r, c in shapes)
    if leftover:
        shapes.append((1, leftover))
    matrices, guides, labels = [], [], []
    x0 = 0.0
    for n, (rows, cols) in enumerate(shapes):
        v = rng.standard_normal(rows * cols).astype(np.float32)
        a = np.abs(v) / np.abs(v).max()
        i, j = np.divmod(np.arange(rows * cols), cols)
        pos = np.stack([x0 + j, np.zeros_like(j), -i], axis=1).astype(np.float32)
        light = (0.15 + 0.5 * np.sqrt(a)).astype(np.float32)
        col = np.empty((rows * cols, 4), np.float32)
        col[:, 0] = np.where(v < 0, light, 0.02)
        col[:, 1] = np.where(v < 0, 0.02, light)
        col[:, 2] = np.where(v < 0, 0.02, 1.0)
        col[:, 3] = 1.0
        matrices.append(MatrixPlan(
            key=f"M{n}", name=f"M{n}", role="leaf", rows=rows, cols=cols, path="",
            positions=pos, values=v, colors=col, sizes=(0.25 + np.sqrt(a)).astype(np.float32),
            normal=np.array([0, -1, 0], np.float32), row_axis=np.array([0, 0, -1], np.float32),
            col_axis=np.array([1, 0, 0], np.float32)))
        r = np.linspace(0, rows - 1, 9)
        guides.append(np.stack([np.stack([np.full(9, x0), np.zeros(9), -r], 1),
                                np.stack([np.full(9, x0 + cols - 1), np.zeros(9), -r], 1)], 1))
        labels.append(LabelPlan(key=f"M{n}", text=f"M{n}", position=np.array(
            [x0 + cols / 2, -2.0, -rows / 2]), size=max(rows, cols) / 10, kind="name"))
        x0 += cols + 10
    allpos = np.concatenate([m.positions[[0, -1]] for m in matrices])
    return ScenePlan(name=name, matrices=matrices, cubes=[], triangles=[],
                     lines=[LinePlan("row_guides", np.concatenate(guides).astype(np.float32),
                                     (0.3, 0.3, 0.3, 1.0))],
                     labels=labels, bounds_min=allpos.min(0) - 1, bounds_max=allpos.max(0) + 1)


def _load_plan(plan: str, cells: int | None = None):
    if plan == "synthetic":
        return synthetic_plan(cells or 1_114_112)
    from mm_blender.core import presets, scene_plan
    return scene_plan.plan_from_spec(presets.load(plan))


def _instances(obj) -> int:
    """Drawn cells: cube instances, or the points of a sphere cloud (the default shape)."""
    import bpy
    dg = bpy.context.evaluated_depsgraph_get()
    geometry = obj.evaluated_get(dg).evaluated_geometry()
    instances = geometry.instances_pointcloud()
    cloud = instances if instances is not None else geometry.pointcloud
    return 0 if cloud is None else len(cloud.points)


def _measure_ours(plan, repeat: int) -> dict:
    import bpy

    from mm_blender.scene import build as buildmod
    best = None
    for attempt in range(repeat):
        plan.name = f"bench{attempt}"
        t0 = time.perf_counter()
        coll = buildmod.build(plan)
        t1 = time.perf_counter()
        bpy.context.evaluated_depsgraph_get()
        t2 = time.perf_counter()
        if best is None or t2 - t0 < best[0]:
            best = (t2 - t0, t1 - t0, t2 - t1)
        expected = sum(int((m.sizes > 0).sum()) for m in plan.matrices)
        got = sum(_instances(o) for o in coll.objects if "mm_key" in o)
        assert got == expected, (got, expected)
        if attempt < repeat - 1:
            buildmod.remove(plan.name)
    return {"build_eval_s": best[0], "build_s": best[1], "eval_s": best[2]}


def child_ours(plan="attention_gaussian", cells=None, repeat=3) -> dict:
    _isolate_blender()
    import bpy
    rss0 = _rss_mb()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    t = time.perf_counter()
    p = _load_plan(plan, cells)
    plan_s = time.perf_counter() - t
    res = _measure_ours(p, repeat)
    return {"plan": plan, "cells": p.cell_count(), "plan_s": plan_s,
            "rss_after_import_mb": rss0, "peak_rss_mb": _peak_rss_mb(),
            "bpy": ".".join(map(str, bpy.app.version)), **res}


def child_floor(cells: int, repeat=3) -> dict:
    """The least a points + instancer scene costs: N points, one attribute, one instancer."""
    _isolate_blender()
    import bpy
    import numpy as np
    bpy.ops.wm.read_factory_settings(use_empty=True)
    rng = np.random.default_rng(0)
    side = int(np.sqrt(cells))
    i, j = np.divmod(np.arange(cells), side)
    co = np.stack([j, np.zeros_like(j), -i], axis=1).astype(np.float32).ravel()
    value = rng.standard_normal(cells).astype(np.float32)
    group = bpy.data.node_groups.new("floor", "GeometryNodeTree")
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    gin = group.nodes.new("NodeGroupInput")
    gout = group.nodes.new("NodeGroupOutput")
    cube = group.nodes.new("GeometryNodeMeshCube")
    inst = group.nodes.new("GeometryNodeInstanceOnPoints")
    group.links.new(gin.outputs[0], inst.inputs["Points"])
    group.links.new(cube.outputs["Mesh"], inst.inputs["Instance"])
    group.links.new(inst.outputs[0], gout.inputs[0])
    best = None
    for attempt in range(repeat):
        t0 = time.perf_counter()
        mesh = bpy.data.meshes.new(f"floor{attempt}")
        mesh.vertices.add(cells)
        mesh.vertices.foreach_set("co", co)
        mesh.attributes.new("value", "FLOAT", "POINT").data.foreach_set("value", value)
        obj = bpy.data.objects.new(mesh.name, mesh)
        bpy.context.scene.collection.objects.link(obj)
        mod = obj.modifiers.new("floor", "NODES")
        mod.node_group = group
        bpy.context.evaluated_depsgraph_get()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
        assert _instances(obj) == cells
        if attempt < repeat - 1:
            bpy.data.batch_remove([obj, mesh])
    return {"cells": cells, "build_eval_s": best, "peak_rss_mb": _peak_rss_mb()}


def child_naive(cells: int, repeat=1) -> dict:
    """One object per cell through bpy.data (shared cube mesh), then ours at the same size."""
    _isolate_blender()
    import bpy
    import numpy as np
    bpy.ops.wm.read_factory_settings(use_empty=True)
    plan = synthetic_plan(cells, "naive_ours")
    m = plan.matrices
    pos = np.concatenate([x.positions for x in m]).tolist()
    val = np.concatenate([x.values for x in m]).tolist()
    col = np.concatenate([x.colors for x in m]).tolist()
    size = np.concatenate([x.sizes for x in m]).tolist()
    cube = bpy.data.meshes.new("cube")
    cube.from_pydata([(x, y, z) for x in (-.5, .5) for y in (-.5, .5) for z in (-.5, .5)], [],
                     [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4),
                      (1, 5, 7, 3)])
    coll = bpy.data.collections.new("naive")
    bpy.context.scene.collection.children.link(coll)
    t0 = time.perf_counter()
    for n in range(len(val)):
        obj = bpy.data.objects.new(f"cell{n}", cube)
        obj.location = pos[n]
        obj.scale = (size[n],) * 3
        obj.color = col[n]
        obj["value"] = val[n]
        coll.objects.link(obj)
    bpy.context.evaluated_depsgraph_get()
    naive_s = time.perf_counter() - t0
    bpy.ops.wm.read_factory_settings(use_empty=True)
    ours = _measure_ours(plan, 3)
    return {"cells": len(val), "naive_s": naive_s, "ours_s": ours["build_eval_s"]}


def child_render(plan="attention_gaussian", shape="cube", resolution=(640, 360),
                 samples=16) -> dict:
    _isolate_blender()
    import bpy

    from mm_blender.render.render import render_still
    from mm_blender.scene.build import build
    bpy.ops.wm.read_factory_settings(use_empty=True)
    p = _load_plan(plan)
    t = time.perf_counter()
    build(p, shape=shape)
    bpy.context.evaluated_depsgraph_get()
    build_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        render_still(Path(d) / "bench.png", resolution=tuple(resolution), samples=samples,
                     device="cpu", denoise=True)
        render_s = time.perf_counter() - t
    return {"plan": plan, "shape": shape, "cells": p.cell_count(), "build_s": build_s,
            "render_s": render_s,
            "resolution": list(resolution), "samples": samples, "peak_rss_mb": _peak_rss_mb()}


_CHILDREN = {"ours": child_ours, "floor": child_floor, "naive": child_naive,
             "render": child_render}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="append a markdown section to this file")
    ap.add_argument("--plan", default="attention_gaussian",
                    help="preset for the 1.1M measurements, or 'synthetic'")
    ap.add_argument("--quick", action="store_true", help="scaling at 0.25M cells only")
    ap.add_argument("--no-render", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-args", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        result = _CHILDREN[args.child](**json.loads(args.child_args))
        print("MMBENCH " + json.dumps(result), flush=True)
        return 0
    results = run(plan=args.plan, quick=args.quick, render=not args.no_render,
                  repeat=args.repeat, progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(results, indent=2))
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write("\n" + markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
