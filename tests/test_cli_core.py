"""`lofw plugins` and `lofw registry`."""

import json

from lofw.cli.main import main


def test_plugins_json_lists_kind_name_plugin_distribution(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    row = next(r for r in rows if r["kind"] == "nominal" and r["name"] == "adam_aggmo")
    assert row["plugin"] == "builtins" and row["distribution"] == "lofw"
    assert row["class"].endswith("AdamAggMo")


def test_plugins_table(capsys):
    assert main(["plugins", "--kind", "magnitude"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["KIND", "NAME", "PLUGIN", "DISTRIBUTION"]
    assert [line.split()[1] for line in out[1:]] == ["constant", "exp"]


def test_registry_lists_recipes(capsys):
    assert main(["registry"]) == 0
    out = capsys.readouterr().out
    for name in ["star", "blackbox", "hyperparam", "star_no_precond", "star_no_nominal"]:
        assert f"\n{name} " in out
    assert main(["registry", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["recipes"]["blackbox"]["extends"] == "star"
    assert "nominal" not in data["recipes"]["blackbox"]


def test_unknown_command_exits_2(capsys):
    try:
        main(["frobnicate"])
    except SystemExit as e:
        assert e.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly():
    """`lofw ablate NAME --dry-run | head -1`: no BrokenPipeError traceback."""
    import subprocess
    import sys

    code = "import sys; from lofw.cli.main import main; sys.exit(main(['ablate', 'stable_star', '--dry-run']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                       # the reader is gone before lofw writes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err, err
