"""The network is off on the command line unless --allow-network is given, and the one-line
error says so. A local server on 127.0.0.1 counts every contact."""
import pytest


def _url_preset(sandbox, server):
    sandbox.write("p.toml", 'expr = "A @ B"\n[matrix.A]\nh = 2\nw = 2\ninit = "url"\n'
                  f'url = "{server.url}/data.csv"\n[matrix.B]\nh = 2\nw = 2\n')


@pytest.mark.parametrize("command", [["check"], ["build", "--blend", "old.blend"],
                                     ["render", "--out", "old.png"]])
def test_url_leaf_without_allow_network(sandbox, server, command):
    _url_preset(sandbox, server)
    sandbox.write("old.blend", b"BLENDER-old")
    sandbox.write("old.png", b"old")
    name, *rest = command
    sandbox.refused(sandbox.cli(name, "p.toml", *rest), "network access is off",
                    "--allow-network", "127.0.0.1")


@pytest.mark.parametrize("link", [
    "https://bhosmer.github.io/mm/index.html?config={url}/params.json",
    "config={url}/params.json",
])
def test_config_link_without_allow_network(sandbox, server, link):
    sandbox.refused(sandbox.cli("import-mm", link.format(url=server.url), "-o", "x.toml"),
                    "network access is off", "--allow-network")


def test_allow_network_reaches_the_server(sandbox, server):
    """The control: the counter sees a contact when the network is allowed."""
    before = server.contacts
    _url_preset(sandbox, server)
    result = sandbox.cli("check", "p.toml", "--allow-network")
    assert result.returncode == 0, result.stderr
    result = sandbox.cli("import-mm", f"config={server.url}/params.json", "--allow-network")
    assert result.returncode == 0, result.stderr
    assert server.contacts == before + 1   # check downloads nothing; the import did


def test_the_panel_follows_allow_online_access(server):
    """The panel's Build (no --allow-network there) follows Blender's Allow Online Access,
    which this bpy has off: the url leaf is refused and the server never hears from us."""
    import bpy

    import mm_blender
    from mm_blender.errors import MMError
    from mm_blender.ui import actions, props
    assert bpy.app.online_access is False
    before = server.contacts
    mm_blender.register()
    try:
        settings = props.settings_of(bpy.context.scene)
        props.settings_from_dict(settings, {"expr": "A @ B", "matrix": {
            "A": {"h": 2, "w": 2, "init": "url", "url": f"{server.url}/a.csv"},
            "B": {"h": 2, "w": 2}}})
        objects = set(bpy.data.objects)
        with pytest.raises(MMError, match="network access is off.*Allow Online Access"):
            actions.build(bpy.context.scene, settings)
        assert set(bpy.data.objects) == objects
    finally:
        mm_blender.unregister()
    assert server.contacts == before
