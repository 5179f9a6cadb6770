"""The expr formula language: semantics against numpy, errors, limits, hostile text, fuzzing."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mm_blender.core import formula
from mm_blender.errors import MMError

ARTICLE = Path(__file__).resolve().parent.parent / "data" / "mm_article_examples.json"

H, W = 5, 7
I, J = np.indices((H, W)).astype(np.float64)


def ev(text, h=H, w=W):
    return formula.evaluate(text, h, w)


# --------------------------------------------------------------------------------------------
# Semantics

CASES = [
    ("i", I),
    ("j", J),
    ("h + w", np.full((H, W), H + W)),
    ("3", np.full((H, W), 3.0)),
    (".5 + 1e-3 + 2.5E2", np.full((H, W), 0.5 + 1e-3 + 250.0)),
    ("i * w + j", I * W + J),
    ("i - j - 1", I - J - 1),
    ("i / 2 / 2", I / 4),
    ("-i % 3", np.fmod(-I, 3)),
    ("(i - 2) % 3", np.fmod(I - 2, 3)),
    ("7 % -3", np.full((H, W), 1.0)),
    ("-2**2", np.full((H, W), -4.0)),
    ("2**-1", np.full((H, W), 0.5)),
    ("2**3**2", np.full((H, W), 512.0)),
    ("(-2)**2", np.full((H, W), 4.0)),
    ("-i ** 2", -(I**2)),
    ("2 * i ** 2", 2 * I**2),
    ("i < j", (I < J).astype(float)),
    ("i <= j", (I <= J).astype(float)),
    ("i > j", (I > J).astype(float)),
    ("i >= j", (I >= J).astype(float)),
    ("i == j", (I == J).astype(float)),
    ("i === j", (I == J).astype(float)),
    ("i != j", (I != J).astype(float)),
    ("i !== j", (I != J).astype(float)),
    ("!i", (I == 0).astype(float)),
    ("!!j", (J != 0).astype(float)),
    ("i && j", ((I != 0) & (J != 0)).astype(float)),
    ("i and j", ((I != 0) & (J != 0)).astype(float)),
    ("i || j", ((I != 0) | (J != 0)).astype(float)),
    ("i or j", ((I != 0) | (J != 0)).astype(float)),
    ("i < 2 || j > 4 && i == 3", ((I < 2) | ((J > 4) & (I == 3))).astype(float)),
    ("i + 1 < j * 2", (I + 1 < J * 2).astype(float)),
    ("i == j ? 1 : i == j + 1 ? -1 : 0", np.eye(H, W) - np.eye(H, W, k=-1)),
    ("i > j ? i : j", np.maximum(I, J)),
    ("(0/0) ? 1 : 2", np.full((H, W), 2.0)),
    ("Math.trunc(-i / 2)", np.trunc(-I / 2)),
    ("floor(-i / 2) + ceil(j / 3)", np.floor(-I / 2) + np.ceil(J / 3)),
    ("Math.round(i - 2.5)", np.floor(I - 2.5 + 0.5)),
    ("abs(i - j) + sign(i - j)", np.abs(I - J) + np.sign(I - J)),
    ("sqrt(i) + exp(-j) + log(1 + i)", np.sqrt(I) + np.exp(-J) + np.log(1 + I)),
    ("log2(j + 1) * log10(i + 1)", np.log2(J + 1) * np.log10(I + 1)),
    ("sin(i) + cos(j) + tan(i / 10)", np.sin(I) + np.cos(J) + np.tan(I / 10)),
    ("asin(i / 5) + acos(j / 7) + atan(i)", np.arcsin(I / 5) + np.arccos(J / 7) + np.arctan(I)),
    ("atan2(i, j)", np.arctan2(I, J)),
    ("tanh(i) + sinh(j / 3) + cosh(i / 3)", np.tanh(I) + np.sinh(J / 3) + np.cosh(I / 3)),
    ("min(i, j)", np.minimum(I, J)),
    ("Math.max(i, j, 3)", np.maximum(np.maximum(I, J), 3)),
    ("pow(i, 2)", I**2),
    ("clamp(i - j, -1, 1)", np.clip(I - J, -1, 1)),
    ("where(i > j, i, -j)", np.where(I > J, I, -J)),
    ("hypot(i, j)", np.hypot(I, J)),
    ("Math.hypot(i, j, 2)", np.hypot(np.hypot(I, J), 2)),
    ("pi + e", np.full((H, W), math.pi + math.e)),
    ("Math.PI * Math.E", np.full((H, W), math.pi * math.e)),
    ("Math.SQRT2 + Math.LN2", np.full((H, W), math.sqrt(2) + math.log(2))),
    ("  i\t+\nj  ", I + J),
]


@pytest.mark.parametrize("text,expected", CASES, ids=[c[0] for c in CASES])
def test_semantics_match_numpy(text, expected):
    out = ev(text)
    assert out.shape == (H, W) and out.dtype == np.float64
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=0)


def test_scalar_formula_broadcasts_to_a_fresh_writeable_array():
    out = ev("1")
    assert out.shape == (H, W) and out.flags.writeable
    out[0, 0] = 5  # must not alias anything shared
    assert ev("1")[0, 0] == 1


def test_empty_grids():
    assert ev("i + j", 0, 4).shape == (0, 4)
    assert ev("i + j", 3, 0).shape == (3, 0)


def test_division_by_zero_and_domain_errors_give_inf_nan_without_warnings():
    with np.errstate(all="raise"):  # the module must silence numpy itself
        assert np.all(np.isinf(ev("1 / 0")))
        assert np.all(np.isnan(ev("0 / 0")))
        assert np.all(np.isnan(ev("i % 0")))
        assert np.all(np.isnan(ev("sqrt(-1 - i)")))
        assert np.all(np.isinf(ev("10 ** 400")))
        assert np.all(np.isnan(ev("log(-1)")))
        assert np.all(np.isinf(ev("1e999")))


def test_js_round_rounds_halves_up():
    np.testing.assert_array_equal(
        formula.evaluate("round(i - 2.5)", 5, 1)[:, 0], [-2.0, -1.0, 0.0, 1.0, 2.0]
    )


def test_long_flat_sum_is_not_deep():
    text = "+".join(["1"] * 1000)  # 1999 characters, under the length limit
    assert np.all(ev(text) == 1000)


def test_canonical_text_round_trips():
    for text, _ in CASES:
        f = formula.parse(text)
        np.testing.assert_array_equal(formula.parse(str(f)).evaluate(H, W), f.evaluate(H, W))


def test_bad_grid_size():
    f = formula.parse("i")
    for bad in (-1, 2.5, "3", True):
        with pytest.raises(MMError):
            f.evaluate(bad, 3)


# --------------------------------------------------------------------------------------------
# mm article formulas


def _article_expr_leaves():
    out = []

    def walk(node, label):
        if not isinstance(node, dict):
            return
        if node.get("init") == "expr" and not node.get("matmul"):
            out.append((label, node["name"], node["h"], node["w"], node["expr"]))
        for side in ("left", "right"):
            walk(node.get(side), label)

    for example in json.loads(ARTICLE.read_text()):
        walk(example["params"], example["label"])
    return out


ARTICLE_LEAVES = _article_expr_leaves()


def _band(k):  # which band of 8 a row/column index is in, as mm's Math.trunc(k / 8) % 2
    return (k // 8) % 2


ARTICLE_EXPECTED = {
    "-2 * (Math.trunc(i / 8) % 2) + 1": lambda i, j: np.where(_band(i) == 0, 1.0, -1.0),
    "-2 * (Math.trunc(j / 8) % 2) + 1": lambda i, j: np.where(_band(j) == 0, 1.0, -1.0),
    "(-Math.trunc(i / 8) % 2) + .5": lambda i, j: np.where(_band(i) == 0, 0.5, -0.5),
    "(-Math.trunc(j / 8) % 2) + .5": lambda i, j: np.where(_band(j) == 0, 0.5, -0.5),
}


def test_article_has_expr_leaves():
    assert len(ARTICLE_LEAVES) >= 19
    assert any(label == "intro_cube" for label, *_ in ARTICLE_LEAVES)


@pytest.mark.parametrize("label,name,h,w,text", ARTICLE_LEAVES)
def test_article_formula(label, name, h, w, text):
    assert text in ARTICLE_EXPECTED, f"new article formula {text!r}: add its expected values"
    i, j = np.indices((h, w))
    np.testing.assert_array_equal(formula.evaluate(text, h, w), ARTICLE_EXPECTED[text](i, j))


def test_intro_cube_left_is_stripes_of_eight_rows():
    out = formula.evaluate("-2 * (Math.trunc(i / 8) % 2) + 1", 32, 24)
    np.testing.assert_array_equal(out[:, 0], [1] * 8 + [-1] * 8 + [1] * 8 + [-1] * 8)
    assert np.all(out == out[:, :1])


# --------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "text,fragments",
    [
        ("2 * (i", ["formula '2 * (i'", "column 7", "expected ')'"]),
        ("foo + 1", ["unknown name 'foo'", "column 1", "allowed: i, j, h, w, pi, e"]),
        ("i + foo(2)", ["unknown function 'foo'", "column 5", "trunc", "clamp"]),
        ("Math.foo(i)", ["unknown function 'Math.foo'"]),
        ("Math.bar", ["unknown name 'Math.bar'"]),
        ("Math", ["unknown name 'Math'"]),
        ("sin", ["function 'sin'", "parentheses"]),
        ("atan2(i)", ["'atan2' takes 2 argument", "got 1"]),
        ("min(i)", ["'min' takes 2 or more", "got 1"]),
        ("clamp(i, 1)", ["'clamp' takes 3"]),
        ("i +", ["column 4", "formula ends"]),
        ("i j", ["column 3", "expected an operator or the end"]),
        ("i ? j", ["expected ':'"]),
        ("(i))", ["column 4"]),
        ("i $ j", ["column 3", "unexpected character '$'"]),
        ("", ["empty"]),
        ("   ", ["empty"]),
    ],
)
def test_error_messages(text, fragments):
    with pytest.raises(MMError) as info:
        formula.parse(text)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_length_limit():
    with pytest.raises(MMError, match="limit is 2000"):
        formula.parse("1" + " " * 2000)


def test_nesting_limits():
    with pytest.raises(MMError, match="nested"):
        formula.parse("(" * 100 + "i" + ")" * 100)
    with pytest.raises(MMError, match="nested"):
        formula.parse("-" * 1999 + "i")
    with pytest.raises(MMError, match="nested"):
        formula.parse("2**" * 500 + "1")
    with pytest.raises(MMError, match="nested"):
        formula.parse("sin(" * 100 + "i" + ")" * 100)
    assert np.all(ev("(" * 30 + "i" + ")" * 30) == I)


def test_not_text():
    with pytest.raises(MMError):
        formula.parse(3)


HOSTILE = [
    "__import__('os')",
    "__import__(\"os\").system(\"ls\")",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "open('x')",
    "open(1)",
    "lambda: 1",
    "i.real",
    "i.__class__",
    "[1]",
    "{}",
    "{'a': 1}",
    "i; j",
    ";",
    "`i`",
    "${i}",
    "i = 1",
    "i += 1",
    "eval(1)",
    "exec(1)",
    "globals()",
    "getattr(i, 'real')",
    "Math.constructor",
    "Math.__class__",
    "Math.trunc.call(1)",
    "import os",
    "1 if i else 2",
    "i @ j",
    "i ^ j",
    "i & j",
    "~i",
    "'abc'",
    "\"abc\"",
    "i // 2",
    "new Date()",
    "x => x",
    "\u0663 + 1",  # an Arabic-Indic digit: only ASCII numbers are numbers
    "i\x00",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_rejected(text):
    with pytest.raises(MMError):
        formula.parse(text)


# --------------------------------------------------------------------------------------------
# Fuzzing

FORMULA_CHARS = list("ijhwpe0123456789.+-*/%()<>=!&|?:, _MathruncsqrtxE'\"[]{};`\\@^~$#\t\n")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(alphabet=st.sampled_from(FORMULA_CHARS), max_size=60),
                 st.text(max_size=40)))
def test_random_text_only_ever_raises_mmerror(text):
    try:
        f = formula.parse(text)
    except MMError:
        return
    out = f.evaluate(3, 4)
    assert out.shape == (3, 4) and out.dtype == np.float64


# Trees of our own, as tuples, printed fully parenthesised and evaluated directly with numpy.
UNARY = ["-", "+", "!"]
BINARY_OPS = ["+", "-", "*", "/", "%", "**", "<", "<=", ">", ">=", "==", "!=", "&&", "||"]
FUNCS = {  # name -> (arity, numpy implementation)
    "trunc": (1, np.trunc), "floor": (1, np.floor), "ceil": (1, np.ceil),
    "round": (1, lambda x: np.floor(x + 0.5)), "abs": (1, np.abs), "sign": (1, np.sign),
    "sqrt": (1, np.sqrt), "exp": (1, np.exp), "log": (1, np.log), "sin": (1, np.sin),
    "cos": (1, np.cos), "tanh": (1, np.tanh), "atan2": (2, np.arctan2),
    "min": (3, lambda a, b, c: np.minimum(np.minimum(a, b), c)),
    "max": (2, np.maximum), "pow": (2, np.power), "hypot": (2, np.hypot),
    "clamp": (3, lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi)),
    "where": (3, lambda c, a, b: np.where((c != 0) & ~np.isnan(c), a, b)),
}


def _truthy(x):
    return (x != 0) & ~np.isnan(x)


NP_BINARY = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "%": np.fmod,
    "**": np.power,
    "<": lambda a, b: (a < b).astype(float), "<=": lambda a, b: (a <= b).astype(float),
    ">": lambda a, b: (a > b).astype(float), ">=": lambda a, b: (a >= b).astype(float),
    "==": lambda a, b: (a == b).astype(float), "!=": lambda a, b: (a != b).astype(float),
    "&&": lambda a, b: (_truthy(a) & _truthy(b)).astype(float),
    "||": lambda a, b: (_truthy(a) | _truthy(b)).astype(float),
}

leaves = st.one_of(
    st.tuples(st.just("num"), st.one_of(st.integers(0, 20).map(float),
                                        st.floats(0, 1e6, allow_nan=False, allow_infinity=False))),
    st.tuples(st.just("var"), st.sampled_from(["i", "j", "h", "w", "pi", "e", "Math.PI"])),
)


def _extend(children):
    return st.one_of(
        st.tuples(st.just("un"), st.sampled_from(UNARY), children),
        st.tuples(st.just("bin"), st.sampled_from(BINARY_OPS), children, children),
        st.tuples(st.just("tern"), children, children, children),
        st.sampled_from(sorted(FUNCS)).flatmap(
            lambda name: st.tuples(
                st.just("call"), st.sampled_from([name, "Math." + name]),
                st.lists(children, min_size=FUNCS[name][0], max_size=FUNCS[name][0]),
            )
        ),
    )


trees = st.recursive(leaves, _extend, max_leaves=25)


def to_text(t):
    kind = t[0]
    if kind == "num":
        return repr(t[1])
    if kind == "var":
        return t[1]
    if kind == "un":
        return f"({t[1]}{to_text(t[2])})"
    if kind == "bin":
        return f"({to_text(t[2])} {t[1]} {to_text(t[3])})"
    if kind == "tern":
        return f"({to_text(t[1])} ? {to_text(t[2])} : {to_text(t[3])})"
    return t[1] + "(" + ", ".join(to_text(a) for a in t[2]) + ")"


def np_eval(t, env):
    kind = t[0]
    if kind == "num":
        return np.float64(t[1])
    if kind == "var":
        return env[t[1]]
    if kind == "un":
        x = np_eval(t[2], env)
        return {"-": np.negative, "+": np.positive,
                "!": lambda v: (~_truthy(v)).astype(float)}[t[1]](x)
    if kind == "bin":
        return NP_BINARY[t[1]](np_eval(t[2], env), np_eval(t[3], env))
    if kind == "tern":
        return np.where(_truthy(np_eval(t[1], env)), np_eval(t[2], env), np_eval(t[3], env))
    name = t[1].removeprefix("Math.")
    return FUNCS[name][1](*(np_eval(a, env) for a in t[2]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_generated_trees_print_parse_and_evaluate_like_numpy(tree):
    h, w = 3, 4
    i, j = np.indices((h, w)).astype(np.float64)
    env = {"i": i, "j": j, "h": np.float64(h), "w": np.float64(w),
           "pi": np.float64(math.pi), "e": np.float64(math.e), "Math.PI": np.float64(math.pi)}
    with np.errstate(all="ignore"):
        expected = np.broadcast_to(np.asarray(np_eval(tree, env), dtype=np.float64), (h, w))
    text = to_text(tree)
    got = formula.evaluate(text, h, w)
    np.testing.assert_array_equal(got, expected)
    # and the parser's own spelling parses back to the same values
    np.testing.assert_array_equal(formula.parse(str(formula.parse(text))).evaluate(h, w), expected)
