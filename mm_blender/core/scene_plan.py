"""From spec + values + layout to a ScenePlan: every matrix's points, colours and sizes, the
cubes, flow guides, row guides, outlines and labels. Pure numpy (no bpy)."""
from __future__ import annotations

import numpy as np

from . import colour, overlays
from . import expr as exprmod
from .evaluate import Values
from .layout import Layout, MatLayout, block_info, block_ranges, compute_layout
from .plan import CubePlan, LabelPlan, LinePlan, MatrixPlan, ScenePlan, TrianglePlan
from .spec import Spec

LEFT_GUIDE_RGB = (150 / 255, 200 / 255, 255 / 255)
RIGHT_GUIDE_RGB = (255 / 255, 150 / 255, 150 / 255)


def object_keys(layout: Layout) -> dict[tuple[str, str], str]:
    """A unique object name per drawn matrix: its expression name, numbered on repeats."""
    seen: dict[str, int] = {}
    keys = {}
    for m in layout.mats:
        name = m.node.name
        seen[name] = seen.get(name, 0) + 1
        keys[(m.path, m.role)] = name if seen[name] == 1 else f"{name} ({seen[name]})"
    return keys


def _operand_key(keys, node) -> str:
    return keys[(node.path, "result" if isinstance(node, exprmod.MatMul) else "leaf")]


def global_absmax(values: Values) -> float:
    return max((colour.finite_absmax(a) for a in values.all_arrays()), default=0.0)


def matrix_plans(spec: Spec, values: Values, layout: Layout, keys=None) -> list[MatrixPlan]:
    keys = keys or object_keys(layout)
    gmax = global_absmax(values)
    plans = []
    for m in layout.mats:
        arr = values.of(m.node).ravel()
        rng = colour.value_range(arr, spec.viz.sensitivity, gmax)
        R = m.world.R
        plan = MatrixPlan(
            key=keys[(m.path, m.role)], name=m.node.name, role=m.role, rows=m.rows,
            cols=m.cols, path=m.path, positions=layout.positions(m), values=arr,
            colors=colour.colors(arr, rng, spec.viz), sizes=colour.sizes(arr, rng, spec.viz),
            normal=layout.to_blender_vec(R @ [0, 0, 1]),
            row_axis=layout.to_blender_vec(R @ [0, 1, 0]),
            col_axis=layout.to_blender_vec(R @ [1, 0, 0]))
        if m.role == "result":
            node = m.node
            plan.left = _operand_key(keys, node.left)
            plan.right = _operand_key(keys, node.right)
            plan.epilogue = spec.matmul(node).epilogue
            plan.matmul = node.name
        plans.append(plan)
    return plans


def cube_plans(layout: Layout, keys) -> list[CubePlan]:
    out = []
    for c in layout.cubes:
        origin, axes, extent = layout.cube_box(c)
        bi, bj, bk = c.blocks
        g = c.gap
        pad = 0.5
        rj = block_ranges(c.cols, bj, g) + g + np.array([-pad, pad])
        ri = block_ranges(c.rows, bi, g) + g + np.array([-pad, pad])
        rk = block_ranges(c.depth, bk, g) + g + np.array([-pad, pad])
        if not c.positive:   # k runs from the back: mirror the depth ranges
            rk = (extent[2] - rk)[:, ::-1]
        base = layout.interior(c, 0, 0, 0)
        dj = layout.to_blender_vec(c.world.vec([1, 0, 0]))
        di = layout.to_blender_vec(c.world.vec([0, 1, 0]))
        dk = layout.to_blender_vec(c.world.vec([0, 0, 1 if c.positive else -1]))
        out.append(CubePlan(
            key=keys[(c.path, "result")], name=c.node.name, path=c.path, origin=origin,
            axes=axes, extent=extent, ranges_j=rj, ranges_i=ri, ranges_k=rk,
            base=base.astype(np.float64), di=di, dj=dj, dk=dk,
            block_i=block_info(c.rows, bi)[0], block_j=block_info(c.cols, bj)[0],
            block_k=block_info(c.depth, bk)[0], gap=g, rows=c.rows, cols=c.cols,
            depth=c.depth, left=_operand_key(keys, c.node.left),
            right=_operand_key(keys, c.node.right), result=keys[(c.path, "result")],
            alg=c.alg, epilogue=layout.spec.matmul(c.node).epilogue,
            placement=(c.placement.polarity, c.placement.left_placement,
                       c.placement.right_placement, c.placement.result_placement)))
    return out


def flow_guides(spec: Spec, layout: Layout) -> TrianglePlan | None:
    """mm's flow guides: a blue triangle from the left argument and a red one from the right,
    meeting at the centre of the cube and pointing to the result face."""
    scale = spec.deco.flow_guides
    if scale <= 0:
        return None
    tris, cols = [], []
    alpha = 0.5 + scale / 2
    for c in layout.cubes:
        g = c.gap
        ext = c.extent()
        cw, ch, cd = ext / 2
        p = c.placement
        place_left = (lambda x: x) if p.left_placement == "left" else (lambda x: ext[0] - x)
        place_right = (lambda y: y) if p.right_placement == "top" else (lambda y: ext[1] - y)
        place_res = (lambda z: z) if p.result_placement == "front" else (lambda z: ext[2] - z)
        centre = np.array([cw, ch, place_res(cd)])
        toward_result = np.array([cw, ch, place_res(cd - (cd - g) * scale)])
        left_tri = np.array([[place_left(cw - (cw - g + c.left_scatter) * scale), ch, place_res(cd)],
                             centre, toward_result])
        right_tri = np.array([[cw, place_right(ch - (ch - g + c.right_scatter) * scale), place_res(cd)],
                              centre, toward_result])
        for tri, rgb in ((left_tri, LEFT_GUIDE_RGB), (right_tri, RIGHT_GUIDE_RGB)):
            tris.append(layout.to_blender(c.world.apply(tri)))
            cols.append((*colour.srgb_to_linear(np.array(rgb)), alpha))
    return TrianglePlan("flow_guides", np.array(tris, dtype=np.float32),
                        np.array(cols, dtype=np.float32))


def row_guides(spec: Spec, layout: Layout, keys=None) -> LinePlan | None:
    """mm's row guides per matrix block: both side edges, a line every ~1/8 of the rows, and a
    short diagonal at the first row marking where (0, 0) is."""
    light = spec.deco.row_guides
    if light <= 0:
        return None
    segs = []
    owners = []
    keys = keys or object_keys(layout)
    for m in layout.mats:
        before = sum(len(s) for s in segs)
        g = m.gap
        for (i0, i1) in block_ranges(m.rows, m.blocks_i, g):
            for (j0, j1) in block_ranges(m.cols, m.blocks_j, g):
                h = i1 - i0 + 1
                w = j1 - j0 + 1
                local = [((i0, j0), (i1, j0)), ((i0, j1), (i1, j1))]
                stride = max(1.0, (h - 1) / 8)
                rows = np.arange(0, h, stride)
                local += [((i0 + r, j0), (i0 + r, j1)) for r in rows]
                local.append(((i0, j0 + w / 8), (i0 + h / 8, j0)))
                pts = np.array([[[g + a[1], g + a[0], 0.0], [g + b[1], g + b[0], 0.0]]
                                for a, b in local])
                segs.append(layout.to_blender(m.world.apply(pts.reshape(-1, 3))).reshape(-1, 2, 3))
        owners.append((keys[(m.path, m.role)], sum(len(s) for s in segs) - before))
    # light lines on the dark look, as mm's white guides (the paper look inverts them)
    lum = float(colour.srgb_to_linear(np.array(min(1.0, 0.8 * light))))
    return LinePlan("row_guides", np.concatenate(segs).astype(np.float32), (lum, lum, lum, 1.0),
                    thickness=0.1, owners=tuple(owners))


def outlines(cubes: list[CubePlan]) -> LinePlan:
    """Thin edges of every cube, one box each: a partition already shows by its gaps, and a
    box per block clutters partitioned scenes (mm draws none)."""
    segs = []
    edges = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]
    for c in cubes:
        lo = np.array([c.ranges_j.min(), c.ranges_i.min(), c.ranges_k.min()])
        hi = np.array([c.ranges_j.max(), c.ranges_i.max(), c.ranges_k.max()])
        corners = np.array([[(hi if (n >> d) & 1 else lo)[d] for d in range(3)]
                            for n in range(8)])
        world = c.origin + corners @ c.axes
        segs.append(np.array([[world[a], world[b]] for a, b in edges]))
    return LinePlan("outlines", np.concatenate(segs).astype(np.float32), (0.25, 0.25, 0.25, 1.0),
                    thickness=0.08)


def _edge(layout: Layout, m: MatLayout, local_ends, outward) -> tuple:
    """A face edge in Blender coordinates: (start, end, unit outward direction)."""
    ends = layout.to_blender(m.world.apply(np.asarray(local_ends, dtype=float)))
    out = layout.to_blender_vec(m.world.vec(outward))
    return (ends[0], ends[1], out / (np.linalg.norm(out) or 1.0))


def labels(spec: Spec, layout: Layout, keys) -> list[LabelPlan]:
    """Matrix names at each face's centre (sized by cbrt(h*w) as mm), and I=/K=/J= shape
    labels with partition counts beside the leaves and the root result."""
    size = spec.deco.legends
    out: list[LabelPlan] = []
    if size <= 0:
        return out
    for m in layout.mats:
        ext = m.extent()
        base = size * np.cbrt(m.rows * m.cols) / 10
        name = m.node.name
        name_size = base * min(1.0, 8 / max(1, len(name)))
        centre_local = np.array([ext[0] / 2, ext[1] / 2, 0.0])
        # the name lies on the face itself, at its centre (as mm draws it); the scene puts it
        # just off the cells on the side the camera sees
        centre_world = m.world.apply(centre_local[None])[0]
        key = keys[(m.path, m.role)]
        axes = (tuple(layout.to_blender_vec(m.world.vec([1, 0, 0]))),
                tuple(layout.to_blender_vec(m.world.vec([0, 1, 0]))))
        out.append(LabelPlan(f"{key}.name", name, layout.to_blender(centre_world[None])[0],
                             name_size, "name", face_axes=axes, matrix=key))
        if spec.deco.shape_labels and m.shape_info is not None:
            th = base / 2.5
            (hname, hplace), (wname, wplace) = m.shape_info
            _, ni = block_info(m.rows, m.blocks_i)
            _, nj = block_info(m.cols, m.blocks_j)
            htext = f"{hname} = {m.rows}" + (f" / {ni}" if ni > 1 else "")
            wtext = f"{wname} = {m.cols}" + (f" / {nj}" if nj > 1 else "")
            hx = ext[0] + 2 * th if hplace else -2 * th
            wy = ext[1] + 2 * th if wplace else -2 * th
            hpos = m.world.apply(np.array([[hx, ext[1] / 2, 0.0]]))[0]
            wpos = m.world.apply(np.array([[ext[0] / 2, wy, 0.0]]))[0]
            # the cells' outer boundary on each side (cells sit from gap to ext - gap)
            x0, x1 = m.gap - 0.5, ext[0] - m.gap + 0.5
            y0, y1 = m.gap - 0.5, ext[1] - m.gap + 0.5
            hx_edge = x1 if hplace else x0
            wy_edge = y1 if wplace else y0
            hedge = _edge(layout, m, [[hx_edge, y0, 0], [hx_edge, y1, 0]],
                          [1 if hplace else -1, 0, 0])
            wedge = _edge(layout, m, [[x0, wy_edge, 0], [x1, wy_edge, 0]],
                          [0, 1 if wplace else -1, 0])
            out.append(LabelPlan(f"{key}.rows", htext, layout.to_blender(hpos[None])[0], th,
                                 "shape", edge=hedge, matrix=key))
            out.append(LabelPlan(f"{key}.cols", wtext, layout.to_blender(wpos[None])[0], th,
                                 "shape", edge=wedge, matrix=key))
    return out


def is_compound(spec: Spec) -> bool:
    """More than one matmul: the expressions the gallery titles, as mm shows them."""
    return exprmod.count_matmuls(spec.tree) > 1


def make_plan(spec: Spec, values: Values, layout: Layout | None = None) -> ScenePlan:
    layout = layout or compute_layout(spec)
    keys = object_keys(layout)
    matrices = matrix_plans(spec, values, layout, keys)
    cubes = cube_plans(layout, keys)
    lines = [outlines(cubes)] if spec.deco.outlines else []
    rg = row_guides(spec, layout, keys)
    if rg is not None:
        lines.append(rg)
    fg = flow_guides(spec, layout)
    axes = overlays.axes_plan(spec, cubes)
    lbls = labels(spec, layout, keys) + overlays.axis_labels(axes)
    unit_box = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    pts = [c.origin + (unit_box * c.extent) @ c.axes for c in cubes]
    pts += [m.positions[[0, -1]] for m in matrices]
    pts += [np.array([l.position]) for l in lbls]
    allp = np.concatenate(pts)
    return ScenePlan(
        name=spec.name, matrices=matrices, cubes=cubes,
        triangles=[fg] if fg is not None else [], lines=lines, labels=lbls,
        bounds_min=allp.min(axis=0).astype(np.float32),
        bounds_max=allp.max(axis=0).astype(np.float32),
        cell_shape=spec.viz.cell_shape, background=spec.look.background,
        view=spec.look.view, title=spec.expr, show_title=bool(spec.deco.title),
        camera_direction=tuple(float(c) for c in spec.look.camera),
        lens=overlays.lens_plan(spec, matrices), spotlight=overlays.spotlight_plan(spec, matrices),
        axes=axes)


def plan_from_spec(spec: Spec, overrides=None, allow_network: bool = True) -> ScenePlan:
    """The whole pure pipeline: values, layout, plan."""
    from .evaluate import evaluate
    return make_plan(spec, evaluate(spec, overrides, allow_network))
