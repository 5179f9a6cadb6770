"""Hypothesis fuzzes the three nested languages with nesting depth across the limit: the mm
expression parser, the mm link reader and the formula language. Within the limits the result
is exactly right; past them it is one MMError naming the limit; never anything else."""
import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mm_blender.core import expr, formula
from mm_blender.errors import MMError
from mm_blender.interop import mm_links

names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,3}", fullmatch=True)
spaces = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def nested_expressions(draw):
    """(text, paren nesting, tree depth) for a random mix of redundant parentheses, left
    chains and right nesting, with depths on both sides of the limits."""
    style = draw(st.sampled_from(["parens", "chain", "right", "mixed"]))
    d = draw(st.integers(0, 260))
    sp = draw(spaces)
    leaf = draw(names)
    if style == "parens":
        return "(" * d + f"{leaf}{sp}@{sp}B" + ")" * d, d, 1
    if style == "chain":
        return f"{sp}@{sp}".join([leaf] * (d + 2)), 0, d + 1
    if style == "right":
        return f"{leaf} @ " + "(B @ " * d + "C" + ")" * d, d, d + 1
    k = draw(st.integers(0, d))   # right nesting k deep inside d - k redundant parentheses
    inner = f"{leaf} @ " + "(B @ " * k + "C" + ")" * k
    return "(" * (d - k) + inner + ")" * (d - k), d, k + 1


@settings(max_examples=200)
@given(nested_expressions())
@example(("(" * 200 + "A @ B" + ")" * 200, 200, 1))          # at the limits, and one past
@example(("(" * 201 + "A @ B" + ")" * 201, 201, 1))
@example((" @ ".join(["A"] * 101), 0, 100))
@example((" @ ".join(["A"] * 102), 0, 101))
def test_expression_parser_nesting(case):
    text, nesting, depth = case
    within = (len(text) <= expr.MAX_EXPR_LENGTH and nesting <= expr.MAX_NESTING
              and depth <= expr.MAX_DEPTH)
    if within:
        tree = expr.parse(text)
        assert expr.depth(tree) == depth
        again = expr.parse(expr.to_text(tree))           # writes back what it read
        assert expr.depth(again) == depth and expr.to_text(again) == expr.to_text(tree)
    else:
        with pytest.raises(MMError, match="too long|depth limit"):
            expr.parse(text)


@settings(max_examples=300)
@given(st.text(alphabet="AB@()= \t_x1.", max_size=400))
def test_expression_parser_any_text(text):
    try:
        tree = expr.parse(text)
    except MMError as e:
        assert len(str(e)) < 400 and "\n" not in str(e)
    else:
        assert expr.depth(tree) <= expr.MAX_DEPTH


def params_text(sides: list[bool]) -> str:
    """An mm params JSON text whose matmul tree is len(sides) + 1 deep, each level's deeper
    child on the left (True) or right; every leaf 2 x 2, so shapes always agree. Written as
    text, so any depth can be made."""
    leaf = '{"name": "L%d", "h": 2, "w": 2, "init": "rows"}'
    node = '{"name": "m0", "matmul": true, "left": %s, "right": %s}' % (leaf % 0, leaf % 1)
    for i, left in enumerate(sides, start=1):
        other = leaf % (i + 1)
        pair = (node, other) if left else (other, node)
        node = '{"name": "m%d", "matmul": true, "left": %s, "right": %s}' % ((i,) + pair)
    root = node.replace('"matmul": true, ', "", 1)
    return '{"expr": "L0 @ L1", ' + root[1:]


@st.composite
def params_trees(draw):
    depth = draw(st.integers(1, 250))
    sides = draw(st.lists(st.booleans(), min_size=depth - 1, max_size=depth - 1))
    return params_text(sides), depth


@settings(max_examples=120)
@given(params_trees())
@example((params_text([True] * 99), 100))   # at the limit, and one past
@example((params_text([False] * 100), 101))
def test_mm_link_reader_nesting(case):
    text, depth = case
    if depth <= expr.MAX_DEPTH:
        data, _ = mm_links.import_mm(text, allow_network=False)
        assert expr.depth(expr.parse(data["expr"])) == depth
    else:
        with pytest.raises(MMError, match="depth limit"):
            mm_links.import_mm(text, allow_network=False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["expr", "left", "right", "name", "matmul", "h", "w", "init",
                         "layout", "anim", "block", "epilog", "gap", "speed"]), inner,
        max_size=5),
    max_leaves=30)


@settings(max_examples=300)
@given(json_values)
def test_mm_link_reader_any_params(value):
    try:
        text = json.dumps({"expr": "A @ B", **value} if isinstance(value, dict) else value)
        mm_links.import_mm(text, allow_network=False)
    except MMError as e:
        assert "\n" not in str(e)


I = np.arange(2.0)[:, None]
J = np.arange(3.0)[None, :]
WRAPPERS = {   # formula text around x, what it computes, the parser nesting levels it adds
    "paren": (lambda t: f"({t})", lambda v: v, 1),
    "neg": (lambda t: f"-({t})", np.negative, 2),
    "not": (lambda t: f"!({t})", lambda v: ((v == 0) | np.isnan(v)).astype(float), 2),
    "sin": (lambda t: f"Math.sin({t})", np.sin, 1),
    "abs": (lambda t: f"abs({t})", np.abs, 1),
    "pow": (lambda t: f"2**({t})", lambda v: np.power(2.0, v), 2),
    "max": (lambda t: f"max({t}, j)", lambda v: np.maximum(v, J), 1),
    "ternary": (lambda t: f"(i > 0 ? {t} : 1)", lambda v: np.where(I > 0, v, 1.0), 2),
}


@settings(max_examples=200)
@given(st.lists(st.sampled_from(sorted(WRAPPERS)), max_size=90))
@example(["paren"] * (formula.MAX_NESTING - 2))   # at the limit, and one past
@example(["paren"] * (formula.MAX_NESTING - 1))
def test_formula_nesting(wrappers):
    # the formula is the first level, the right side of its `+` the second
    text, expected, levels = "i + j", I + J, 2
    for name in wrappers:
        write, compute, cost = WRAPPERS[name]
        text, levels = write(text), levels + cost
        with np.errstate(all="ignore"):
            expected = compute(expected)
    if levels <= formula.MAX_NESTING and len(text) <= formula.MAX_LENGTH:
        got = formula.evaluate(text, 2, 3)
        np.testing.assert_allclose(got, np.broadcast_to(expected, (2, 3)), equal_nan=True)
    else:
        with pytest.raises(MMError, match="nested more than|characters long"):
            formula.evaluate(text, 2, 3)


@settings(max_examples=300)
@given(st.text(alphabet="ij+-*/%()!?:,.<>=&|^ 0123456789eMathsinpow", max_size=300))
def test_formula_any_text(text):
    try:
        value = formula.evaluate(text, 2, 3)
    except MMError as e:
        assert "\n" not in str(e)
    else:
        assert value.shape == (2, 3)
