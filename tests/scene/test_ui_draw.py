"""Every panel's draw code through a stand-in layout as strict as Blender's UILayout (the panel
cannot be drawn without Blender's GUI): every call's arguments are checked against
`UILayout.bl_rna.functions[name].parameters`, every attribute set against
`UILayout.bl_rna.properties`, enum values against their items, `prop()` targets against the
real property groups, operators, menus, panels and lists against what is registered. The
checks come from Blender's own introspection, so they follow the running Blender line (5.0,
4.5) and any panel code added later, with no list kept here.

Each panel section is drawn in every state a user reaches: no build, a build (each node of
the tree selected), an expression error, a sweep preset, a partitioned preset, each kind of
leaf initialiser, custom placement, a real model, saved user presets."""
from __future__ import annotations

import re
import types
import inspect
from dataclasses import dataclass

import bpy
import pytest

import mm_blender
from mm_blender import ui
from mm_blender.ui import actions, panel, props
from mm_blender.ui import presets as ui_presets

UI = bpy.types.UILayout.bl_rna


class LayoutError(AssertionError):
    """A call or setting that Blender's UILayout would refuse."""


def _enum_ids(prop) -> set[str]:
    return {item.identifier for item in prop.enum_items}


def check_value(prop, value, where: str) -> None:
    """`value` is what Blender would accept for the RNA property or parameter `prop`."""
    kind = prop.type
    if getattr(prop, "array_length", 0) and kind in ("BOOLEAN", "INT", "FLOAT"):
        values = list(value)
        if len(values) != prop.array_length:
            raise LayoutError(f"{where}: expects {prop.array_length} values, got {value!r}")
        for v in values:
            check_value(types.SimpleNamespace(type=kind), v, where)
        return
    if kind == "BOOLEAN":
        ok = isinstance(value, bool) or (isinstance(value, int) and value in (0, 1))
    elif kind == "INT":
        ok = isinstance(value, int)
    elif kind == "FLOAT":
        ok = isinstance(value, (int, float))
    elif kind == "STRING":
        ok = isinstance(value, str)
    elif kind == "ENUM":
        items = _enum_ids(prop)
        chosen = value if prop.is_enum_flag else {value}
        ok = isinstance(chosen, (set, frozenset)) and all(isinstance(v, str) for v in chosen)
        if ok and items and not chosen <= items:        # dynamic enums list no items here
            raise LayoutError(f"{where}: {value!r} is not one of {sorted(items)}")
    elif kind in ("POINTER", "COLLECTION"):
        ok = (value is None and not prop.is_required) or hasattr(value, "bl_rna")
    else:
        ok = True
    if not ok:
        raise LayoutError(f"{where}: {value!r} is not a valid {kind.lower()}")


def _operator_type(idname: str, where: str):
    category, _, name = idname.partition(".")
    if not category or not name:
        raise LayoutError(f"{where}: {idname!r} is not an operator id (category.name)")
    try:
        return getattr(getattr(bpy.ops, category), name).get_rna_type()
    except (AttributeError, KeyError):
        raise LayoutError(f"{where}: operator {idname!r} is not registered") from None


def _rna_property(data, name: str, where: str):
    if not hasattr(data, "bl_rna"):
        raise LayoutError(f"{where}: {data!r} is not Blender data")
    if name.startswith('["') and name.endswith('"]'):      # a custom property: data["key"]
        if name[2:-2] not in data.keys():
            raise LayoutError(f"{where}: {data!r} has no custom property {name[2:-2]!r}")
        return None
    prop = data.bl_rna.properties.get(name)
    if prop is None:
        raise LayoutError(f"{where}: {data.bl_rna.identifier} has no property {name!r}")
    return prop


@dataclass
class Call:
    """One recorded layout call: the function's name and its arguments by parameter name."""
    name: str
    args: dict


class OperatorProperties:
    """What `layout.operator()` returns: only the operator's properties can be set."""

    def __init__(self, rna, idname):
        object.__setattr__(self, "_rna", rna)
        object.__setattr__(self, "_idname", idname)

    def __setattr__(self, key, value):
        prop = self._rna.properties.get(key)
        if prop is None or key == "rna_type":
            raise LayoutError(f"operator {self._idname} has no property {key!r}")
        check_value(prop, value, f"{self._idname}.{key}")
        object.__setattr__(self, key, value)


class StrictLayout:
    """Stands in for bpy.types.UILayout. Calls are bound to the function's RNA parameters
    (positional in order, then keywords) and recorded in a log shared with child layouts."""

    def __init__(self, log: list[Call] | None = None):
        object.__setattr__(self, "_log", [] if log is None else log)
        object.__setattr__(self, "_values", {})

    # --- attributes ------------------------------------------------------------------------
    def __setattr__(self, key, value):
        prop = UI.properties.get(key)
        if prop is None or key == "rna_type":
            raise LayoutError(f"UILayout has no attribute {key!r}")
        if prop.is_readonly:
            raise LayoutError(f"UILayout.{key} is read-only")
        check_value(prop, value, f"UILayout.{key}")
        self._values[key] = value

    def __getattr__(self, key):
        if key.startswith("_"):
            raise AttributeError(key)
        function = UI.functions.get(key)
        if function is not None:
            return lambda *args, **kwargs: self._call(function, args, kwargs)
        prop = UI.properties.get(key)
        if prop is not None:
            if key in self._values:
                return self._values[key]
            if prop.type == "ENUM":
                return prop.default_flag if prop.is_enum_flag else prop.default
            return prop.default
        raise LayoutError(f"UILayout has no attribute {key!r}")

    # --- calls -----------------------------------------------------------------------------
    def _call(self, function, args, kwargs):
        name = function.identifier
        inputs = [p for p in function.parameters if not p.is_output]
        if len(args) > len(inputs):
            raise LayoutError(f"UILayout.{name}() takes {len(inputs)} arguments, "
                              f"{len(args)} given")
        bound = {p.identifier: a for p, a in zip(inputs, args)}
        known = {p.identifier: p for p in inputs}
        for key, value in kwargs.items():
            if key not in known:
                raise LayoutError(f"UILayout.{name}() has no argument {key!r} "
                                  f"(it takes {sorted(known)})")
            if key in bound:
                raise LayoutError(f"UILayout.{name}() got {key!r} twice")
            bound[key] = value
        for p in inputs:
            if p.is_required and p.identifier not in bound:
                raise LayoutError(f"UILayout.{name}() needs {p.identifier!r}")
            if p.identifier in bound:
                check_value(p, bound[p.identifier], f"UILayout.{name}({p.identifier}=)")
        where = f"UILayout.{name}()"
        self._check_targets(name, bound, where)
        self._log.append(Call(name, bound))
        return self._outputs(function, bound, where)

    def _check_targets(self, name, bound, where):
        for data_key, prop_key in (("data", "property"), ("dataptr", "propname"),
                                   ("active_dataptr", "active_propname"),
                                   ("search_data", "search_property")):
            if data_key in bound and prop_key in bound:
                prop = _rna_property(bound[data_key], bound[prop_key], where)
                if prop is None:
                    continue
                if name in ("prop_enum", "prop_tabs_enum", "props_enum") and prop.type != "ENUM":
                    raise LayoutError(f"{where}: {bound[prop_key]!r} is not an enum")
                if "value" in bound and name == "prop_enum":
                    check_value(prop, bound["value"], where)
        if "operator" in bound:
            _operator_type(bound["operator"], where)
        if "menu" in bound and getattr(bpy.types, bound["menu"], None) is None:
            raise LayoutError(f"{where}: no menu {bound['menu']!r} is registered")
        if name == "popover" and getattr(bpy.types, bound["panel"], None) is None:
            raise LayoutError(f"{where}: no panel {bound['panel']!r} is registered")
        if "listtype_name" in bound:
            cls = getattr(bpy.types, bound["listtype_name"], None)
            if cls is None or not issubclass(cls, bpy.types.UIList):
                raise LayoutError(f"{where}: no UIList {bound['listtype_name']!r}")

    def _outputs(self, function, bound, where):
        outputs = []
        for p in function.parameters:
            if not p.is_output:
                continue
            fixed = getattr(p, "fixed_type", None)
            fixed = fixed.identifier if fixed is not None else ""
            if fixed == "UILayout":
                outputs.append(StrictLayout(self._log))
            elif fixed == "OperatorProperties":
                outputs.append(OperatorProperties(_operator_type(bound["operator"], where),
                                                  bound["operator"]))
            else:
                outputs.append({"STRING": "", "BOOLEAN": False}.get(p.type, 0))
        if not outputs:
            return None
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    # --- reading the log -------------------------------------------------------------------
    def calls(self, name: str) -> list[Call]:
        return [c for c in self._log if c.name == name]

    def labels(self) -> list[str]:
        return [c.args.get("text", "") for c in self.calls("label")]

    def operators(self) -> list[str]:
        return [c.args["operator"] for c in self.calls("operator")]

    def props(self) -> set[tuple[str, str]]:
        return {(c.args["data"].bl_rna.identifier, c.args["property"])
                for c in self.calls("prop")}


class StandIn:
    """`self` inside a panel's or list's draw code: its layout, and the class's own methods
    and attributes bound to it."""

    def __init__(self, cls, layout):
        self._cls, self.layout = cls, layout

    def __getattr__(self, key):
        raw = inspect.getattr_static(self._cls, key)
        if callable(raw) and not isinstance(raw, type) and hasattr(raw, "__get__"):
            return raw.__get__(self, self._cls)          # methods, classmethods, staticmethods
        return getattr(self._cls, key)


class Context:
    """bpy.context for drawing: the given members, else the real context's (a member Blender
    lacks fails as it would)."""

    def __init__(self, **members):
        self._members = members

    def __getattr__(self, key):
        if key in self._members:
            return self._members[key]
        return getattr(bpy.context, key)


# every panel the add-on registers, wherever it is defined
PANELS = [c for c in ui.CLASSES if issubclass(c, bpy.types.Panel)]


def draw_all(active_object=None, width=300) -> StrictLayout:
    """Draw every panel (header and body, whatever its poll says) and every row of every
    list a panel shows, as Blender would for the current scene; returns the layout holding
    the log of every call."""
    layout = StrictLayout()
    context = Context(scene=bpy.context.scene, region=types.SimpleNamespace(width=width),
                      active_object=active_object, object=active_object)
    for cls in PANELS:
        for name in ("draw_header", "draw"):
            if hasattr(cls, name):
                getattr(cls, name)(StandIn(cls, layout), context)
    for call in layout.calls("template_list"):
        cls, data, propname = (call.args[k] for k in ("listtype_name", "dataptr", "propname"))
        cls = getattr(bpy.types, cls)
        lister = StandIn(cls, layout)
        if "filter_items" in vars(cls):
            lister.filter_items(context, data, propname)
        for index, item in enumerate(getattr(data, propname)):
            lister.draw_item(context, layout.row(), data, item, 0, call.args["active_dataptr"],
                             call.args["active_propname"], index)
    return layout


# --- the recorder itself is strict ----------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def registered():
    mm_blender.register()
    yield
    mm_blender.unregister()


@pytest.fixture
def settings():
    return props.settings_of(bpy.context.scene)


@pytest.fixture(autouse=True)
def user_presets_dir(tmp_path):
    ui_presets.set_user_dir(tmp_path / "user_presets")
    yield tmp_path / "user_presets"
    ui_presets.set_user_dir(None)


@pytest.mark.parametrize("typo, message", [
    (lambda lay, s: setattr(lay.row(), "alignment", "RIGTH"), "'RIGTH' is not one of"),
    (lambda lay, s: setattr(lay.column(), "actve", False), "no attribute 'actve'"),
    (lambda lay, s: lay.prop(s, "expr", txt=""), "no argument 'txt'"),
    (lambda lay, s: lay.prop(s, "expr", placeholdr="A @ B"), "no argument 'placeholdr'"),
    (lambda lay, s: lay.prop(s, "exrp"), "has no property 'exrp'"),
    (lambda lay, s: lay.prop(s.look, "background", text=3), "not a valid string"),
    (lambda lay, s: lay.prop(s, "expr", icon="NO_SUCH_ICON"), "'NO_SUCH_ICON' is not one"),
    (lambda lay, s: lay.prop_enum(s.look, "background", "plaid"), "'plaid' is not one of"),
    (lambda lay, s: lay.operator("mm.biuld"), "'mm.biuld' is not registered"),
    (lambda lay, s: setattr(lay.operator("mm.load_preset"), "nmae", "x"), "no property 'nmae'"),
    (lambda lay, s: setattr(lay.operator("mm.load_preset"), "name", 3), "not a valid string"),
    (lambda lay, s: lay.label(text="a", icon="ERORR"), "'ERORR' is not one of"),
    (lambda lay, s: lay.label("a", "b", True, "INFO", 0, 1), "takes 5 arguments"),
    (lambda lay, s: lay.column(algin=True), "no argument 'algin'"),
    (lambda lay, s: setattr(lay, "scale_y", "big"), "not a valid float"),
    (lambda lay, s: setattr(lay, "direction", "VERTICAL"), "read-only"),
    (lambda lay, s: lay.template_list("MM_UL_nodse", "", s, "nodes", s, "node_index"),
     "no UIList 'MM_UL_nodse'"),
    (lambda lay, s: lay.template_list("MM_UL_nodes", "", s, "nodes", s, "node_idx"),
     "no property 'node_idx'"),
    (lambda lay, s: lay.prop(types.SimpleNamespace(expr=""), "expr"), "not a valid pointer"),
    (lambda lay, s: lay.menu("MM_MT_none"), "no menu"),
    (lambda lay, s: lay.prop(s.id_data, '["mm_nope"]'), "no custom property 'mm_nope'"),
    (lambda lay, s: lay.seperator(), "no attribute 'seperator'"),
])
def test_the_recorder_refuses_what_blender_refuses(settings, typo, message):
    with pytest.raises(LayoutError, match=re.escape(message)):
        typo(StrictLayout(), settings)


def test_the_recorder_accepts_what_blender_accepts(settings):
    layout = StrictLayout()
    row = layout.row(align=True, heading="H")
    row.alignment = "RIGHT"
    row.scale_y, row.active, row.enabled = 1.4, True, 0
    assert (row.alignment, layout.alignment) == ("RIGHT", "EXPAND")   # a child's own state
    row.prop(settings, "expr", text="", icon="EXPORT")
    row.prop(settings.look, "camera", index=1)
    row.prop_enum(settings.look, "background", "paper")
    op = row.operator("mm.load_preset", text="Load", icon="IMPORT")
    op.name = "intro_cube"
    settings.id_data["mm_note"] = 1
    row.prop(settings.id_data, '["mm_note"]')
    header, body = layout.panel("an_id")
    body.label(text="x")
    layout.separator(factor=0.5)
    assert layout.labels() == ["x"] and layout.operators() == ["mm.load_preset"]
    assert ("MM_PG_look", "camera") in layout.props()


# --- every panel in every state -------------------------------------------------------------

def test_no_build_draws(settings):
    layout = draw_all()
    assert "Load a preset or write an expression" in layout.labels()
    assert {"mm.build", "mm.clear", "mm.load_preset", "mm.import_link", "mm.render_still",
            "mm.render_animation", "mm.frame_camera", "mm.save_preset"} <= set(layout.operators())
    assert "No saved presets yet" in layout.labels()


def test_a_build_draws_every_node_selected(settings):
    bpy.ops.mm.load_preset(name="intro_cube")
    bpy.ops.mm.build()
    matrix = next(o for o in bpy.data.objects if "mm_name" in o)
    kinds = set()
    for index, row in enumerate(settings.nodes):
        settings.node_index = index
        layout = draw_all(active_object=matrix)
        kinds.add(row.kind)
        assert any(text.startswith(f"{row.name}: ") for text in layout.labels()), row.name
        assert any(text.startswith("Values:") for text in layout.labels())
        tree_rows = [t for t in layout.labels() if t in {r.name for r in settings.nodes}]
        assert tree_rows == [r.name for r in settings.nodes]     # one row per node, in order
    assert kinds == {"MATMUL", "LEAF"}
    assert panel.MM_PT_selection.poll(Context(active_object=matrix))
    assert not panel.MM_PT_selection.poll(Context(active_object=bpy.context.scene.camera))
    layout = draw_all(active_object=bpy.context.scene.camera)   # not a matrix of a build
    assert "Not a matrix of a build" in layout.labels()


def test_an_error_draws(settings):
    bpy.ops.mm.load_preset(name="intro_cube")
    settings.expr = "A @@"
    for width in (120, 600):
        layout = draw_all(width=width)
        error = [c for c in layout.calls("label") if c.args.get("icon") == "ERROR"]
        assert len(error) == 1 and "column" in " ".join(layout.labels())


@pytest.mark.parametrize("name", ["vmprod", "binary_sweep", "data_parallel_vmprod"])
def test_a_sweep_preset_draws(settings, name):
    bpy.ops.mm.load_preset(name=name)
    assert settings.anim.alg != "none"
    layout = draw_all()
    assert {("MM_PG_anim", key) for key in ("alg", "fuse", "speed", "frames_per_step")} \
        <= layout.props()


@pytest.mark.parametrize("name", ["binary_partition", "data_parallel",
                                  "full_layer_bpt_and_split_k"])
def test_a_partitioned_preset_draws(settings, name):
    bpy.ops.mm.load_preset(name=name)
    assert max(settings.blocks.i, settings.blocks.j, settings.blocks.k) > 1
    for index, row in enumerate(settings.nodes):
        settings.node_index = index
        layout = draw_all()
        assert {("MM_PG_blocks", key) for key in ("i", "j", "k")} <= layout.props()
        if row.kind == "MATMUL":
            assert ("MM_PG_matmul", "k_blocks") in layout.props()


def test_every_leaf_initialiser_and_custom_placement_draw(settings, monkeypatch):
    bpy.ops.mm.load_preset(name="intro_cube")
    leaf_index = next(i for i, r in enumerate(settings.nodes) if r.kind == "LEAF")
    settings.node_index = leaf_index
    _, leaf = props.selected_node(settings)
    inits = sorted(_enum_ids(leaf.bl_rna.properties["init"]))
    assert len(inits) > 5
    for online in (True, False):
        monkeypatch.setattr(actions, "online_access", lambda online=online: online)
        for init in inits:
            leaf.init = init
            layout = draw_all()
            assert ("MM_PG_matrix", "init") in layout.props(), init
    settings.layout.scheme = "custom"
    settings.node_index = 0
    _, mm = props.selected_node(settings)
    mm.custom_placement = True
    layout = draw_all()
    assert ("MM_PG_matmul", "left_placement") in layout.props()


def test_a_model_and_saved_presets_draw(settings):
    bpy.ops.mm.load_preset(name="attention_smollm2_l0h2")
    assert settings.use_model
    bpy.ops.mm.save_preset(name="mine")
    layout = draw_all()
    assert ("MM_PG_model", "model") in layout.props()
    loads = [c for c in layout.calls("operator") if c.args.get("text") == "mine"]
    assert loads and loads[0].args["operator"] == "mm.load_preset"


def test_panels_are_in_the_mm_tab():
    assert {c.bl_idname for c in PANELS} == {c.__name__ for c in PANELS}
    assert all(c.bl_category == "MM" and c.bl_space_type == "VIEW_3D" for c in PANELS)
    parents = {c.bl_idname for c in PANELS}
    assert all(getattr(c, "bl_parent_id", "MM_PT_main") in parents for c in PANELS)
