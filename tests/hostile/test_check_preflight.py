"""`check` runs every pre-flight check `build` runs: memory for the cells (and sweep points),
[model] tokens, layer and head against the model, and network needs."""
import pytest

MODEL = ('expr = "Q @ K_t"\n[matrix.Q]\ninit = "model"\nh = 8\nw = 64\n'
         '[matrix.K_t]\ninit = "model"\nh = 64\nw = 8\n[model]\nmodel = "smollm2"\n')


@pytest.mark.parametrize("text, words", [
    # 12.9 billion cells: each side is in range, the scene is not
    ('expr = "A @ B"\n[matrix.A]\nh = 65536\nw = 65536\n[matrix.B]\nh = 65536\nw = 1000\n',
     ["cells", "GiB", "memory"]),
    (MODEL + "tokens = -5\nlayer = 0\nhead = 0\n", ["tokens", "-5"]),
    (MODEL + "tokens = 8\nlayer = 99999\nhead = 0\n", ["layer", "99999"]),
    (MODEL + "tokens = 8\nlayer = 100\nhead = 0\n", ["layer 100 out of range", "30 layers"]),
    (MODEL + "tokens = 8\nlayer = 0\nhead = 99\n", ["head 99 out of range"]),
    (MODEL + "tokens = 100000\nlayer = 0\nhead = 0\n", ["tokens 100000 over the limit"]),
    (MODEL.replace('"smollm2"', '"no_such_model"') + "tokens = 8\n", ["no_such_model"]),
    ('expr = "A @ B"\n[model]\ncapture = "missing.npz"\n', ["missing.npz", "does not exist"]),
])
def test_check_refuses_what_build_would(sandbox, text, words):
    sandbox.write("p.toml", text)
    sandbox.write("old.blend", b"BLENDER-old")
    check = sandbox.refused(sandbox.cli("check", "p.toml"), *words)
    build = sandbox.refused(sandbox.cli("build", "p.toml", "--blend", "old.blend"), *words)
    assert check == build   # the same check, the same line


def test_check_passes_what_build_builds(sandbox):   # the control: a good [model] preset
    sandbox.write("p.toml", MODEL + "tokens = 8\nlayer = 3\nhead = 2\n")
    result = sandbox.cli("check", "p.toml")
    assert result.returncode == 0, result.stderr
