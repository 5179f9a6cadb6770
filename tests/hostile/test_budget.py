"""The memory estimate counts everything that will be built: cells, and for sweeps the
products in flight, highlights and k-block planes, compared with what a build makes."""
from mm_blender import api
from mm_blender.core import budget
from mm_blender.core.spec import from_dict


def _spec(n, k_blocks, alg="vmprod"):
    return from_dict({"expr": "A @ B", "matrix": {"A": {"h": n, "w": n}, "B": {"h": n, "w": n}},
                      "blocks": {"k": k_blocks}, "anim": {"alg": alg}})


def test_k_planes_are_counted():
    b = budget.budget(_spec(64, 64))
    assert b.cells == 3 * 64 * 64 == 12_288
    # the k-block planes alone are 64 blocks x 64 x 64 result cells
    assert b.sweep >= 64 * 64 * 64 == 262_144
    assert budget.budget(_spec(64, 64, alg="none")).sweep == 0


def test_the_estimate_covers_what_a_build_makes():
    """Every point of every built mesh that grows with the matrices (cells, value copies, k
    planes), plus the products and highlights the sweep evaluates, is within the estimate."""
    n = 12
    spec = _spec(n, 4)
    api.reset_file()
    coll = api.build(spec, allow_network=False)
    fixed = ("colour_table", "lines", "flow_guides")   # the same size for any matrix
    meshes = [o for o in coll.all_objects
              if o.type == "MESH" and not o.name.endswith(fixed)]
    stored = sum(len(o.data.vertices) for o in meshes)
    planes = [o for o in meshes if o.name.endswith("k_planes")]
    assert planes and sum(len(o.data.vertices) for o in planes) == 4 * n * n
    evaluated = n * n + n * n   # vmprod: a row of A times all of B in flight; A's highlight
    b = budget.budget(spec)
    assert stored + evaluated <= b.points
    assert b.points - (stored + evaluated) <= n * n   # a little to spare, not a multiple
    api.reset_file()


def test_a_sweep_too_big_for_memory_is_refused(sandbox):
    # 4 million cells fit; their 64 k-block planes (85 million points) would not
    sandbox.write("p.toml", 'expr = "A @ B"\n[matrix.A]\nh = 1152\nw = 1152\n'
                  '[matrix.B]\nh = 1152\nw = 1152\n[blocks]\nk = 64\n[anim]\nalg = "vmprod"\n')
    memory = budget.available_memory()
    if memory is None or memory > 64 * 2**30:
        import pytest
        pytest.skip("needs a machine with less than 64 GiB")
    sandbox.write("old.png", b"old")
    sandbox.refused(sandbox.cli("check", "p.toml"), "3,981,312 cells", "k planes")
    sandbox.refused(sandbox.cli("render", "p.toml", "--out", "old.png"), "k planes")
