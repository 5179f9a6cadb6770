"""mm's expression language: `@` left-associative, parentheses, inline names, mm's leaf-name
characters and default matmul names; errors name the column and what was expected; to_text
round-trips any tree."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_blender.core import expr as E
from mm_blender.core.expr import Leaf, MatMul, default_name, parse, to_text
from mm_blender.errors import MMError

ARTICLE = Path(__file__).resolve().parent.parent / "data" / "mm_article_examples.json"


def shape(node):
    """The bare tree structure: leaf names and the nesting of matmuls."""
    if isinstance(node, Leaf):
        return node.name
    return (shape(node.left), shape(node.right))


def names(node):
    """Structure with every matmul's (name, named) as well."""
    if isinstance(node, Leaf):
        return ("leaf", node.name)
    return ("mm", node.name, node.named, names(node.left), names(node.right))


# --------------------------------------------------------------------------------------------
# Parsing


def test_single_matmul():
    root = parse("A @ B")
    assert isinstance(root, MatMul) and not root.named
    assert root.name == "A @ B"
    assert isinstance(root.left, Leaf) and root.left.name == "A"
    assert isinstance(root.right, Leaf) and root.right.name == "B"


def test_left_associative():
    assert shape(parse("A @ B @ C")) == (("A", "B"), "C")
    assert shape(parse("A @ B @ C")) == shape(parse("(A @ B) @ C"))
    assert shape(parse("A @ B @ C @ D")) == ((("A", "B"), "C"), "D")


def test_parentheses_group():
    assert shape(parse("A @ (B @ C)")) == ("A", ("B", "C"))
    assert shape(parse("A @ B @ (C @ D)")) == (("A", "B"), ("C", "D"))
    assert shape(parse("((A @ B))")) == ("A", "B")
    assert shape(parse("(A) @ ((B))")) == ("A", "B")
    assert shape(parse("A @ (B @ (C @ D)) @ E")) == (("A", ("B", ("C", "D"))), "E")


def test_whitespace_is_free():
    assert names(parse("A@B@(C@D)")) == names(parse("  A @ B\t@ ( C @ D )\n"))


def test_inline_names():
    root = parse("out = (attn = Q @ K_t) @ V")
    assert root.name == "out" and root.named
    attn = root.left
    assert isinstance(attn, MatMul) and attn.name == "attn" and attn.named
    assert shape(attn) == ("Q", "K_t")
    assert root.right.name == "V"


def test_inline_names_article_attention():
    root = parse("out = (attn = (Q = input @ wQ) @ (K_t = wK_t @ input_t)) @ (V = input @ wV) @ wO")
    assert root.name == "out" and root.named
    av = root.left
    assert av.name == "attn @ V" and not av.named
    attn, v = av.left, av.right
    assert (attn.name, v.name) == ("attn", "V") and attn.named and v.named
    assert (attn.left.name, attn.right.name) == ("Q", "K_t")
    assert shape(attn) == (("input", "wQ"), ("wK_t", "input_t"))
    assert shape(v) == ("input", "wV")
    assert root.right.name == "wO"
    # the shared leaf appears twice, as two Leaf nodes with the same name
    assert [leaf.name for leaf in E.leaves(root)].count("input") == 2


def test_mm_leaf_name_characters():
    name = "a.b-c!#$%^&/[x]"
    root = parse(f"{name} @ y_2")
    assert root.left.name == name and root.right.name == "y_2"
    assert root.name == f"{name} @ y_2"
    assert parse("w[0].T @ x/y").left.name == "w[0].T"
    assert parse("w[0].T @ x/y").right.name == "x/y"
    # '-' is a name character, not an operator
    assert isinstance(parse("A-B @ C").left, Leaf)


def test_default_names_as_mm_makes_them():
    assert parse("A @ B @ C").name == "A @ B @ C"
    assert parse("A @ B @ C").left.name == "A @ B"
    assert parse("A @ (B @ C)").name == "A @ (B @ C)"
    assert parse("A @ B @ (C @ D)").name == "A @ B @ (C @ D)"
    assert parse("A @ (B @ C) @ D").name == "A @ (B @ C) @ D"
    assert parse("A @ (B @ (C @ D))").name == "A @ (B @ (C @ D))"
    # a named right operand has no spaces in its name: no parentheses
    assert parse("A @ (x = B @ C)").name == "A @ x"
    assert default_name(Leaf("A"), Leaf("B")) == "A @ B"


def test_default_names_match_every_article_example():
    """Every matmul name mm stored in the article's params equals ours."""
    examples = json.loads(ARTICLE.read_text())
    checked = 0
    for entry in examples:
        params = entry["params"]
        root = parse(params["expr"])

        def compare(jnode, node):
            nonlocal checked
            assert jnode["name"] == node.name, (entry["label"], node.path)
            if isinstance(node, MatMul):
                assert jnode.get("matmul", True)
                checked += 1
                compare(jnode["left"], node.left)
                compare(jnode["right"], node.right)
            else:
                assert not jnode.get("matmul", False)

        compare(params, root)
    assert checked > 100


def test_paths_and_walk_order():
    root = parse("A @ B @ (C @ D)")
    by_path = {n.path: n for n in E.walk(root)}
    assert set(by_path) == {"", "l", "ll", "lr", "r", "rl", "rr"}
    assert by_path[""] is root and by_path["rl"].name == "C"
    order = [n.path for n in E.walk(root)]
    assert order == ["ll", "lr", "l", "rl", "rr", "r", ""]  # children before parents
    assert [m.path for m in E.matmuls(root)] == ["l", "r", ""]
    assert [leaf.name for leaf in E.leaves(root)] == ["A", "B", "C", "D"]
    assert E.count_matmuls(root) == 3


def test_columns_recorded():
    root = parse("A @ BB @ C")
    assert root.left.left.column == 1 and root.left.right.column == 5
    assert root.right.column == 10
    assert root.column == 8 and root.left.column == 3  # the '@' of each matmul


# --------------------------------------------------------------------------------------------
# Errors: one exception type, the column, what was expected


@pytest.mark.parametrize("text, column, words", [
    ("A @", 4, ["a matrix name or '('", "end of expression"]),
    ("A @@ B", 4, ["a matrix name or '('", "'@'"]),
    ("(A @ B", 7, ["')'", "end of expression"]),
    ("A B", 3, ["'@' or end of expression", "'B'"]),
    ("A @ B)", 6, ["'@' or end of expression", "')'"]),
    ("A @ B * C", 7, ["unexpected character", "'*'"]),
    ("A @ (B @ C))", 12, ["'@' or end of expression", "')'"]),
    ("@ A", 1, ["a matrix name or '('", "'@'"]),
    ("A @ ()", 6, ["a matrix name or '('", "')'"]),
    ("A @ B = C", 7, ["'@'", "parentheses"]),
])
def test_errors_name_column_and_expectation(text, column, words):
    with pytest.raises(MMError) as info:
        parse(text)
    message = str(info.value)
    assert f"column {column}:" in message
    assert repr(text) in message
    for word in words:
        assert word in message, message
    assert "\n" not in message


def test_name_on_a_single_matrix_is_an_error():
    with pytest.raises(MMError) as info:
        parse("x = A")
    message = str(info.value)
    assert "column 1" in message and "'x" in message and "matmul" in message


def test_single_matrix_is_not_an_expression():
    with pytest.raises(MMError, match="at least one '@'"):
        parse("A")


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_expression(text):
    with pytest.raises(MMError, match="empty"):
        parse(text)


def test_not_a_string_and_too_long():
    with pytest.raises(MMError):
        parse(None)
    with pytest.raises(MMError, match="too long"):
        parse(" @ ".join(["A"] * 2000))


def test_deep_nesting_within_the_limit_parses():
    text = "(" * 200 + "A @ B" + ")" * 200
    assert shape(parse(text)) == ("A", "B")


# --------------------------------------------------------------------------------------------
# to_text


@pytest.mark.parametrize("text", [
    "A @ B",
    "A @ B @ C",
    "A @ (B @ C)",
    "A @ B @ (C @ D)",
    "out = (attn = Q @ K_t) @ V",
    "out = (attn = (Q = input @ wQ) @ (K_t = wK_t @ input_t)) @ (V = input @ wV) @ wO",
    "layer_out = (attn_out = (attn = (Q = input @ wQ) @ K_t) @ V @ wO) @ FFN_1 @ FFN_2",
    "a.b-c!#$%^&/[x] @ (y = z @ w)",
])
def test_to_text_round_trip_fixed(text):
    assert to_text(parse(text)) == text


def test_to_text_drops_redundant_parentheses():
    assert to_text(parse("((A @ B)) @ (C)")) == "A @ B @ C"


# --- hypothesis: random trees -> to_text -> parse -> the same tree -----------------------

_FIRST = "abcXYZ_0"
_REST = "abcXYZ_09.-!#$%^&/[]"
leaf_names = st.builds(lambda a, b: a + b, st.sampled_from(_FIRST),
                       st.text(alphabet=_REST, max_size=5))


@st.composite
def trees(draw, depth=0):
    if depth >= 4 or (depth > 0 and draw(st.booleans())):
        return Leaf(draw(leaf_names))
    left = draw(trees(depth + 1))
    right = draw(trees(depth + 1))
    if draw(st.integers(0, 3)) == 0:
        return MatMul(draw(leaf_names), left, right, named=True)
    return MatMul(default_name(left, right), left, right)


@settings(max_examples=100, deadline=None)
@given(trees())
def test_to_text_round_trip_random_trees(tree):
    text = to_text(tree)
    parsed = parse(text)
    assert names(parsed) == names(tree)
    assert to_text(parsed) == text
    # paths follow the structure
    for node in E.walk(parsed):
        if isinstance(node, MatMul):
            assert node.left.path == node.path + "l" and node.right.path == node.path + "r"
