"""Messages: an error about a data file never echoes its contents, and a FIFO or a folder
given as a preset or data file is named as what it is."""
import os

import pytest

SECRET = "hunter2-TOPSECRET"


def test_csv_error_does_not_echo_the_file(sandbox):
    sandbox.write("private/secret.txt", f"{SECRET},password\n1,2\n")
    sandbox.write("presets/p.toml", 'expr = "A @ B"\n[matrix.A]\nh = 2\nw = 2\ninit = "file"\n'
                  'file = "../private/secret.txt"\n[matrix.B]\nh = 2\nw = 2\n')
    sandbox.write("old.blend", b"BLENDER-old")
    result = sandbox.cli("build", "presets/p.toml", "--blend", "old.blend")
    line = sandbox.refused(result, "secret.txt", "line 1, column 1", "not a number")
    assert SECRET not in result.stderr + result.stdout and "password" not in line


def test_preset_toml_error_does_not_echo_a_private_file(sandbox):
    sandbox.write("secret.toml", f"{SECRET} = = 1\n")
    result = sandbox.cli("check", "secret.toml")
    sandbox.refused(result, "not valid TOML")
    assert SECRET not in result.stderr


@pytest.mark.parametrize("kind, words", [("fifo", "a FIFO (named pipe)"),
                                         ("folder", "a folder")])
def test_preset_that_is_not_a_file(sandbox, kind, words):
    path = sandbox.path("p.toml")
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    sandbox.refused(sandbox.cli("check", "p.toml"), "p.toml", words)
    sandbox.refused(sandbox.cli("check", str(path)), words)


@pytest.mark.parametrize("kind, words", [("fifo", "a FIFO (named pipe)"),
                                         ("folder", "a folder")])
def test_data_file_that_is_not_a_file(sandbox, kind, words):
    path = sandbox.path("d.npy")
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    sandbox.write("p.toml", 'expr = "A @ B"\n[matrix.A]\nh = 2\nw = 2\ninit = "file"\n'
                  'file = "d.npy"\n[matrix.B]\nh = 2\nw = 2\n')
    sandbox.refused(sandbox.cli("check", "p.toml"), "d.npy", words)


def test_mm_link_file_error_does_not_echo_the_file(sandbox):
    sandbox.write("secret.txt", f"{SECRET} is my password\n")
    result = sandbox.cli("import-mm", "secret.txt", "-o", "x.toml")
    sandbox.refused(result, "secret.txt", "holds no mm URL")
    assert SECRET not in result.stderr


@pytest.mark.parametrize("command", [
    ["capture", "--model", "minilm", "--layer", "0", "--head", "0", "--text", "pipe.txt",
     "--out", "x.npz"],
    ["check", "p.toml"],
])
def test_text_that_is_a_fifo_is_named_not_read(sandbox, command):
    os.mkfifo(sandbox.path("pipe.txt"))   # reading it would wait for ever
    sandbox.write("p.toml", 'expr = "Q @ K_t"\n[matrix.Q]\ninit = "model"\nh = 4\nw = 2\n'
                  '[matrix.K_t]\ninit = "model"\nh = 2\nw = 4\n'
                  '[model]\nmodel = "minilm"\ntext = "pipe.txt"\n')
    sandbox.refused(sandbox.cli(*command), "pipe.txt", "a FIFO (named pipe)")
