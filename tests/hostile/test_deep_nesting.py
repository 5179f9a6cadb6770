"""Deep nesting: parentheses, long `@` chains, mm link trees and formulas nested past the
depth limit are one MMError line naming the limit, never a RecursionError."""

import pytest

from mm_blender.core import expr, formula


def _preset(sandbox, name, expr_text, extra=""):
    return sandbox.write(name, f'expr = "{expr_text}"\n{extra}')


@pytest.mark.parametrize("text", [
    "(" * 1500 + "A @ B" + ")" * 1500,                 # parentheses, under the length cap
    " @ ".join(["A"] * 1000),                          # a chain of 1000 terms: 999 deep
    "A @ " + "(B @ " * 150 + "C" + ")" * 150,          # right-nested, 151 deep
])
def test_deep_expression_in_a_preset(sandbox, text):
    assert len(text) <= expr.MAX_EXPR_LENGTH
    _preset(sandbox, "deep.toml", text)
    line = sandbox.refused(sandbox.cli("check", "deep.toml"), "deep.toml", "depth limit")
    assert "Recursion" not in line


def test_deep_expression_in_build_too(sandbox):
    sandbox.write("deep.toml", 'expr = "' + " @ ".join(["A"] * 1000) + '"\n')
    sandbox.path("old.blend").write_bytes(b"BLENDER-old")
    sandbox.refused(sandbox.cli("build", "deep.toml", "--blend", "old.blend"), "depth limit")


def _params_tree(depth: int) -> str:
    """An mm params JSON whose left spine is `depth` matmuls deep, written as text (a Python
    structure that deep could not even be dumped)."""
    leaf = '{"name": "L%d", "h": 2, "w": 2, "init": "rows"}'
    text = '{"name": "m0", "matmul": true, "left": %s, "right": %s}' % (leaf % 0, leaf % 1)
    for i in range(1, depth):
        text = '{"name": "m%d", "matmul": true, "left": %s, "right": %s}' % (
            i, text, leaf % (i + 1))
    return '{"expr": "L0 @ L1", "name": "deep", "left": %s, "right": %s}' % (text, leaf % -1)


@pytest.mark.parametrize("depth", [150, 600, 5000])
def test_deep_mm_link_tree(sandbox, depth):
    sandbox.write("deep.json", _params_tree(depth))
    line = sandbox.refused(sandbox.cli("import-mm", "deep.json", "-o", "out.toml"),
                           "depth limit")
    assert len(line) < 200


def test_deep_compressed_mm_link(sandbox):
    # the flat form numbers each parent path: one number spelling 300 'left.' steps
    parent = ".".join(["left"] * 300)
    link = ("https://bhosmer.github.io/mm/index.html?0.1=x&2=L%20%40%20R"
            f"&{parent}=0&name=1&expr=2")
    sandbox.refused(sandbox.cli("import-mm", link), "mm link", "depth limit")


@pytest.mark.parametrize("text", [
    "(" * 500 + "i" + ")" * 500,
    "-" * 1500 + "i",
    "sin(" * 300 + "i" + ")" * 300,
    "2**" * 500 + "i",
])
def test_deep_formula_in_a_preset(sandbox, text):
    assert len(text) <= formula.MAX_LENGTH
    sandbox.write("f.toml", 'expr = "A @ B"\n[matrix.A]\ninit = "expr"\n'
                  f'formula = "{text}"\n')
    sandbox.refused(sandbox.cli("check", "f.toml"), "nested more than")


@pytest.mark.parametrize("value", [
    "[" * 3000 + "]" * 3000,                      # arrays
    "{a = " * 3000 + "1" + "}" * 3000,            # inline tables
])
def test_deeply_nested_toml(sandbox, value):
    sandbox.write("deep.toml", f'expr = "A @ B"\nx = {value}\n')
    sandbox.refused(sandbox.cli("check", "deep.toml"), "deep.toml", "depth limit")


def test_brackets_in_toml_strings_and_comments_are_not_nesting(sandbox):
    sandbox.write("p.toml", 'expr = "A @ B"  # ' + "[" * 100 + "\n"
                  'description = "' + "[" * 100 + "'''" + '"\n'
                  "name = '" + "{" * 100 + "'\n")
    result = sandbox.cli("check", "p.toml")
    assert result.returncode == 0, result.stderr
