"""Render benchmark: whole processes (import to PNG), each against a floor in the same run.

  floor:  a bare Cycles point cloud of the scene's cell count -- one mesh filled with
          foreach_set, Mesh to Points, one material reading a colour attribute -- at the
          same resolution, samples and denoising (320x200, 4 samples, OIDN);
  still:  `render attention_smollm2_l5h4` (868,352 cells): aim <= 1.5x the floor;
  sweep:  `render attention_smollm2_l5h4_vmprod --frames A-B`, a 10-frame chunk: aim
          <= 2x a whole still of the same scene (`render attention_smollm2_l5h4_vmprod`),
          with each frame's split into scene sync and sampling;
  chunk floor: the same 10 frames of the still's scene (`render attention_smollm2_l5h4
          --frames A-B`), where nothing changes from frame to frame: Cycles syncs once and
          each further frame only samples and denoises. Its ratio to the still is the least
          any sweep chunk can reach at these settings;
  memory: peak RSS of a still of 1.1M cells (attention_gaussian): aim <= 1.2 GB; and a
          synthetic plan at 0.25M, 1M and 4M cells, to show time and memory grow linearly;
  before: the same still and a 2-frame chunk with cube cells (instances), as rendered
          before spheres became the default.
Floor, still and chunk are interleaved and each taken as the best of `repeat` runs, so
they see the same load. Wall time is what the aims are about; CPU time (all threads of
the process) is given beside it, since it moves less with other work on the machine.

    python bench/bench_render.py [--out BENCHMARKS.md] [--repeat 2] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESOLUTION = (320, 200)
SAMPLES = 4
STILL = "attention_smollm2_l5h4"
SWEEP = "attention_smollm2_l5h4_vmprod"
CHUNK = (100, 109)          # mid-sweep: every matmul of the fused chain in flight
BIG = "attention_gaussian"  # 1,114,112 cells
SCALING = (250_000, 1_000_000, 4_000_000)

FLOOR = textwrap.dedent(r'''
    import sys, numpy as np, bpy
    n, out, w, h, samples = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    side = int(np.ceil(np.sqrt(n)))
    i, j = np.divmod(np.arange(n), side)
    co = np.stack([j, np.zeros_like(j), -i], 1).astype(np.float32)
    rng = np.random.default_rng(0)
    colour = np.concatenate([rng.random((n, 3)), np.ones((n, 1))], 1).astype(np.float32)
    mesh = bpy.data.meshes.new("floor")
    mesh.vertices.add(n)
    mesh.vertices.foreach_set("co", co.ravel())
    mesh.attributes.new("col", "FLOAT_COLOR", "POINT").data.foreach_set("color", colour.ravel())
    obj = bpy.data.objects.new("floor", mesh)
    scene.collection.objects.link(obj)
    group = bpy.data.node_groups.new("floor", "GeometryNodeTree")
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    gin, gout = group.nodes.new("NodeGroupInput"), group.nodes.new("NodeGroupOutput")
    points = group.nodes.new("GeometryNodeMeshToPoints")
    points.inputs["Radius"].default_value = 0.35
    setmat = group.nodes.new("GeometryNodeSetMaterial")
    group.links.new(gin.outputs[0], points.inputs["Mesh"])
    group.links.new(points.outputs[0], setmat.inputs["Geometry"])
    group.links.new(setmat.outputs[0], gout.inputs[0])
    obj.modifiers.new("floor", "NODES").node_group = group
    mat = bpy.data.materials.new("floor")
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    setmat.inputs["Material"].default_value = mat
    nt = mat.node_tree
    nt.nodes.clear()
    attr = nt.nodes.new("ShaderNodeAttribute")
    attr.attribute_name = "col"
    emit = nt.nodes.new("ShaderNodeEmission")
    outn = nt.nodes.new("ShaderNodeOutputMaterial")
    nt.links.new(attr.outputs["Color"], emit.inputs["Color"])
    nt.links.new(emit.outputs[0], outn.inputs["Surface"])
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    cam.location = (side / 2, -2.0 * side, -side / 2)
    cam.rotation_euler = (np.pi / 2, 0, 0)
    scene.camera = cam
    r = scene.render
    r.engine = "CYCLES"
    r.resolution_x, r.resolution_y, r.resolution_percentage = w, h, 100
    c = scene.cycles
    c.device, c.samples = "CPU", samples
    c.use_denoising, c.denoiser, c.denoising_prefilter = True, "OPENIMAGEDENOISE", "FAST"
    r.filepath = out
    bpy.ops.render.render(write_still=True)
''')

SCALED = textwrap.dedent(r'''
    import sys
    from mm_blender import bpy_env
    bpy_env.prepare()
    import bpy
    sys.path.insert(0, sys.argv[5])
    import bench_scene
    from mm_blender.render.render import render_still
    from mm_blender.scene.build import build
    n, out, w, h, samples = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[6])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    build(bench_scene.synthetic_plan(n))
    render_still(out, resolution=(w, h), samples=samples, device="cpu")
''')


def _env(cache: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    env["MM_BLENDER_USER_CACHE"] = cache      # captures cached here (warmed up first)
    return env


def _run(cmd: list[str], env: dict) -> dict:
    """Run a whole process; wall and CPU seconds, peak RSS, its output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout}


def _cli(*args) -> list[str]:
    w, h = RESOLUTION
    return [sys.executable, "-m", "mm_blender", "render", *args, "--resolution", f"{w}x{h}",
            "--samples", str(SAMPLES), "--device", "cpu", "--quiet"]


def _cube_preset(tmp: Path, name: str) -> str:
    """The preset with viz.cell_shape = "cube" (its other keys unchanged)."""
    text = (REPO / "presets" / f"{name}.toml").read_text(encoding="utf-8")
    text = text.replace("[viz]\n", '[viz]\ncell_shape = "cube"\n', 1)
    path = tmp / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


_SPLIT = re.compile(r"(\d+) frames, ([\d.]+) s a frame \(median\): scene ([\d.]+) s "
                    r"\(evaluate ([\d.]+), Cycles sync ([\d.]+)\), sampling ([\d.]+) s, "
                    r"writing ([\d.]+) s")


def _split(stdout: str) -> dict:
    m = _SPLIT.search(stdout)
    if not m:
        raise RuntimeError(f"no per-frame summary in:\n{stdout[-2000:]}")
    keys = ("frames", "frame_s", "scene_s", "evaluate_s", "sync_s", "sampling_s", "write_s")
    return {k: (int(v) if k == "frames" else float(v)) for k, v in zip(keys, m.groups())}


def _best(runs: list[dict]) -> dict:
    best = dict(min(runs, key=lambda r: r["wall_s"]))
    best["cpu_s"] = min(r["cpu_s"] for r in runs)
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    best["runs"] = len(runs)
    return best


def run(*, repeat: int = 2, quick: bool = False, progress=print) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="mm_bench_render_"))
    env = _env(str(tmp / "cache"))
    w, h = RESOLUTION
    out: dict = {"resolution": list(RESOLUTION), "samples": SAMPLES, "chunk_frames": list(CHUNK),
                 "load_average": os.getloadavg()[0]}
    progress("bench_render: warm-up (fills the capture cache)")
    cells = json.loads(subprocess.run(
        [sys.executable, "-c", "import json; from mm_blender.core import presets; "
         f"print(json.dumps(presets.load({STILL!r}).cell_count()))"],
        env=env, cwd=REPO, capture_output=True, text=True, check=True).stdout)
    out["cells"] = cells
    _run(_cli(STILL, "--out", str(tmp / "warm.png")), env)

    floors, stills, sweep_stills, chunks, static_chunks = [], [], [], [], []
    for n in range(repeat):
        progress(f"bench_render: floor, stills, chunk ({n + 1}/{repeat})")
        floors.append(_run([sys.executable, "-c", FLOOR, str(cells), str(tmp / "floor.png"),
                            str(w), str(h), str(SAMPLES)], env))
        stills.append(_run(_cli(STILL, "--out", str(tmp / "still.png")), env))
        sweep_stills.append(_run(_cli(SWEEP, "--out", str(tmp / "sweep_still.png")), env))
        chunk = _run(_cli(SWEEP, "--frames", f"{CHUNK[0]}-{CHUNK[1]}",
                          "--out", str(tmp / "chunk")), env)
        chunk["split"] = _split(chunk["stdout"])
        chunks.append(chunk)
        static = _run(_cli(STILL, "--frames", f"{CHUNK[0]}-{CHUNK[1]}",
                           "--out", str(tmp / "static_chunk")), env)
        static["split"] = _split(static["stdout"])
        static_chunks.append(static)
    out["floor"], out["still"], out["chunk"] = _best(floors), _best(stills), _best(chunks)
    out["sweep_still"] = _best(sweep_stills)
    out["static_chunk"] = _best(static_chunks)
    out["static_chunk_over_still"] = out["static_chunk"]["wall_s"] / out["still"]["wall_s"]
    out["still_over_floor"] = out["still"]["wall_s"] / out["floor"]["wall_s"]
    out["chunk_over_still"] = out["chunk"]["wall_s"] / out["sweep_still"]["wall_s"]

    progress(f"bench_render: still of {BIG} (memory)")
    out["big"] = _run(_cli(BIG, "--out", str(tmp / "big.png")), env)
    big_cells = json.loads(subprocess.run(
        [sys.executable, "-c", "import json; from mm_blender.core import presets; "
         f"print(json.dumps(presets.load({BIG!r}).cell_count()))"],
        env=env, cwd=REPO, capture_output=True, text=True, check=True).stdout)
    out["big"]["cells"] = big_cells
    out["scaling"] = []
    for n in (SCALING[:1] if quick else SCALING):
        progress(f"bench_render: scaling, {n:,} cells")
        r = _run([sys.executable, "-c", SCALED, str(n), str(tmp / f"scaled{n}.png"), str(w),
                  str(h), str(REPO / "bench"), str(SAMPLES)], env)
        r["cells"] = n
        out["scaling"].append(r)

    if not quick:
        progress("bench_render: before -- cube cells, still and a 2-frame chunk")
        out["cube_still"] = _run(_cli(_cube_preset(tmp, STILL), "--out",
                                      str(tmp / "cube.png")), env)
        cube_chunk = _run(_cli(_cube_preset(tmp, SWEEP), "--frames",
                               f"{CHUNK[0]}-{CHUNK[0] + 1}", "--out", str(tmp / "cube_chunk")),
                          env)
        cube_chunk["split"] = _split(cube_chunk["stdout"])
        out["cube_chunk"] = cube_chunk
    for section in out.values():
        if isinstance(section, dict):
            section.pop("stdout", None)
    for section in out.get("scaling", []) + [out.get("cube_chunk", {})]:
        section.pop("stdout", None)
    return out


def _linear(scaling: list[dict], key: str) -> str:
    """Increment per million cells between consecutive sizes."""
    steps = []
    for a, b in zip(scaling, scaling[1:]):
        steps.append((b[key] - a[key]) / ((b["cells"] - a["cells"]) / 1e6))
    return ", ".join(f"{s:.2f}" if key == "wall_s" else f"{s:.0f}" for s in steps)


def markdown(r: dict) -> str:
    f, s, c, ss = r["floor"], r["still"], r["chunk"], r["sweep_still"]
    sp = c["split"]
    sc, scp = r["static_chunk"], r["static_chunk"]["split"]
    big = r["big"]
    w, h = r["resolution"]
    lines = [
        "## Render: stills and sweep chunks against the path-tracing floor "
        "(bench/bench_render.py)",
        "",
        f"Whole processes (Python start, import bpy, values, build, render, PNG written), "
        f"{w}x{h}, {r['samples']} samples, OIDN denoising, Cycles on the CPU; floor, still "
        f"and chunk interleaved, best of {s['runs']} each; load average {r['load_average']:.1f} "
        "at the start. CPU = user + system seconds of all the process's threads.",
        "",
        "| measurement | cells | wall | CPU | peak RSS |",
        "|---|---:|---:|---:|---:|",
        f"| floor: bare point cloud (foreach_set, Mesh to Points, one colour material) | "
        f"{r['cells']:,} | {f['wall_s']:.2f} s | {f['cpu_s']:.2f} s | {f['peak_rss_mb']:.0f} MB |",
        f"| still: `render {STILL}` | {r['cells']:,} | **{s['wall_s']:.2f} s** | "
        f"{s['cpu_s']:.2f} s | {s['peak_rss_mb']:.0f} MB |",
        f"| still of the sweep's scene: `render {SWEEP}` | {r['cells']:,} | "
        f"**{ss['wall_s']:.2f} s** | {ss['cpu_s']:.2f} s | {ss['peak_rss_mb']:.0f} MB |",
        f"| sweep: `render {SWEEP} --frames {r['chunk_frames'][0]}-{r['chunk_frames'][1]}` (10 frames) | "
        f"{r['cells']:,} | **{c['wall_s']:.2f} s** | {c['cpu_s']:.2f} s | "
        f"{c['peak_rss_mb']:.0f} MB |",
        f"| chunk floor: `render {STILL} --frames {r['chunk_frames'][0]}-{r['chunk_frames'][1]}` "
        f"(10 frames, nothing changes) | {r['cells']:,} | {sc['wall_s']:.2f} s | "
        f"{sc['cpu_s']:.2f} s | {sc['peak_rss_mb']:.0f} MB |",
        f"| memory: `render {BIG}` | {big['cells']:,} | {big['wall_s']:.2f} s | "
        f"{big['cpu_s']:.2f} s | **{big['peak_rss_mb']:.0f} MB** |",
    ]
    for x in r["scaling"]:
        lines.append(f"| scaling: synthetic plan, still | {x['cells']:,} | {x['wall_s']:.2f} s | "
                     f"{x['cpu_s']:.2f} s | {x['peak_rss_mb']:.0f} MB |")
    if "cube_still" in r:
        cs, cc = r["cube_still"], r["cube_chunk"]
        lines += [
            f"| before: the still with cube cells (instances) | {r['cells']:,} | "
            f"{cs['wall_s']:.2f} s | {cs['cpu_s']:.2f} s | {cs['peak_rss_mb']:.0f} MB |",
            f"| before: a 2-frame chunk with cube cells | {r['cells']:,} | {cc['wall_s']:.2f} s | "
            f"{cc['cpu_s']:.2f} s | {cc['peak_rss_mb']:.0f} MB |",
        ]
    lines += [
        "",
        f"- **Still / floor: {r['still_over_floor']:.2f}x** (aim <= 1.5x; CPU "
        f"{s['cpu_s'] / f['cpu_s']:.2f}x).",
        f"- **10-frame chunk / whole still of the same scene: {r['chunk_over_still']:.2f}x** "
        f"(aim <= 2x; CPU {c['cpu_s'] / ss['cpu_s']:.2f}x). A frame (median) takes {sp['frame_s']:.2f} s: "
        f"scene {sp['scene_s']:.2f} s (frame change and Geometry Nodes {sp['evaluate_s']:.2f} s, "
        f"Cycles sync and BVH {sp['sync_s']:.2f} s), sampling and denoising "
        f"{sp['sampling_s']:.2f} s, writing {sp['write_s']:.2f} s.",
        f"- **Chunk floor: {r['static_chunk_over_still']:.2f}x** its still: the still's scene "
        f"rendered as the same 10 frames with nothing changing costs {sc['wall_s']:.2f} s "
        f"against {s['wall_s']:.2f} s for its whole still; a frame there (median) is "
        f"{scp['frame_s']:.2f} s, all of it sampling and denoising (scene sync "
        f"{scp['scene_s']:.2f} s). 2x would need the 9 frames after the first to add at most one "
        f"whole still, about {s['wall_s'] / 9:.2f} s a frame, less than sampling and "
        f"denoising alone take at these settings.",
        f"- **Peak RSS at {big['cells']:,} cells: {big['peak_rss_mb']:.0f} MB** (aim <= 1200 MB).",
    ]
    if len(r["scaling"]) > 1:
        lines.append(
            f"- Linear growth: each further million cells adds {_linear(r['scaling'], 'wall_s')} s "
            f"and {_linear(r['scaling'], 'peak_rss_mb')} MB (0.25M->1M, 1M->4M).")
    if "cube_chunk" in r:
        cs, cc = r["cube_still"], r["cube_chunk"]["split"]
        lines.append(
            f"- Before (cube cells): the still took {cs['wall_s'] / s['wall_s']:.1f}x as long "
            f"and {cs['peak_rss_mb'] / s['peak_rss_mb']:.1f}x the memory; a frame "
            f"{cc['frame_s']:.2f} s ({cc['frame_s'] / sp['frame_s']:.0f}x), of which scene sync "
            f"{cc['scene_s']:.2f} s.")
    lines.append("")
    return "\n".join(lines)


def readme_table(r: dict) -> str:
    """The figures for the README's Speed section (between its speed markers)."""
    f, s, c, ss, big = r["floor"], r["still"], r["chunk"], r["sweep_still"], r["big"]
    sp = c["split"]
    rows = [
        "| | wall | against | aim |",
        "|---|---:|---|---|",
        f"| still of the SmolLM2 head, {r['cells']:,} cells | {s['wall_s']:.1f} s | "
        f"**{r['still_over_floor']:.2f}x** a bare Cycles point cloud of as many points "
        f"({f['wall_s']:.1f} s) | <= 1.5x |",
        f"| 10 frames of its sweep (`--frames {r['chunk_frames'][0]}-{r['chunk_frames'][1]}`) | "
        f"{c['wall_s']:.1f} s | **{r['chunk_over_still']:.2f}x** a whole still of the same "
        f"scene ({ss['wall_s']:.1f} s) | <= 2x |",
        f"| a frame of it (median) | {sp['frame_s']:.2f} s | scene sync {sp['scene_s']:.2f} s, "
        f"sampling and denoising {sp['sampling_s']:.2f} s | close to the sampling |",
        f"| floor of a chunk: 10 frames of the still's scene, nothing changing | "
        f"{r['static_chunk']['wall_s']:.1f} s | **{r['static_chunk_over_still']:.2f}x** its whole "
        f"still; a frame {r['static_chunk']['split']['frame_s']:.2f} s, all sampling and "
        f"denoising | the least a chunk can cost |",
        f"| peak memory, {big['cells']:,} cells | {big['peak_rss_mb']:.0f} MB | | <= 1200 MB |",
    ]
    if len(r["scaling"]) > 1:
        rows.append(f"| each further million cells | {_linear(r['scaling'], 'wall_s')} s | "
                    f"{_linear(r['scaling'], 'peak_rss_mb')} MB (0.25M to 1M, 1M to 4M) | "
                    "linear |")
    if "cube_chunk" in r:
        rows.append(f"| before: cube cells, still / a sweep frame | {r['cube_still']['wall_s']:.1f} s"
                    f" / {r['cube_chunk']['split']['frame_s']:.1f} s | peak memory "
                    f"{r['cube_still']['peak_rss_mb']:.0f} MB | |")
    return (f"Measured {time.strftime('%Y-%m-%d', time.gmtime())}, load average "
            f"{r['load_average']:.1f} on 2 shared cores:\n\n" + "\n".join(rows))


def write_readme(path, r: dict) -> None:
    """Replace the table between `<!-- speed:start -->` and `<!-- speed:end -->`."""
    text = Path(path).read_text(encoding="utf-8")
    start, end = "<!-- speed:start -->", "<!-- speed:end -->"
    if start not in text or end not in text:
        raise RuntimeError(f"{path} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    Path(path).write_text(f"{head}{start}\n{readme_table(r)}\n{end}{tail}", encoding="utf-8")


def splice(path, section: str) -> None:
    """Replace the file's Render section (up to the next `## ` heading), or append it."""
    p = Path(path)
    text = p.read_text(encoding="utf-8") if p.exists() else ""
    head = "## Render:"
    if head in text:
        before, rest = text.split(head, 1)
        nxt = rest.find("\n## ")
        after = rest[nxt + 1:] if nxt >= 0 else ""
        text = before + section.rstrip("\n") + "\n\n" + after
    else:
        text = text.rstrip("\n") + "\n\n" + section
    p.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="write the Render section into this file (replacing "
                                  "one already there)")
    ap.add_argument("--readme", help="update the Speed figures in this README")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="no 1M/4M scaling, no cube baseline")
    args = ap.parse_args(argv)
    results = run(repeat=args.repeat, quick=args.quick,
                  progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(results, indent=2))
    if args.out:
        splice(args.out, markdown(results))
    if args.readme:
        write_readme(args.readme, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
