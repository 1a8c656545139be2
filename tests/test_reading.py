"""The one reader of hand-written files: UTF-8, size, depth and alias bounds, located one-line refusals."""

from __future__ import annotations

import json

import pytest

from lofw.cli.main import main as cli
from lofw.errors import ConfigError
from lofw.reading import MAX_DEPTH, MAX_NODES, read_json_file, read_yaml

LAUGHS = "".join(
    f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "x"] * 9) + "]\n" for i in range(9)
)  # 9**9 = 387 million leaves once expanded, in under 500 bytes


def _write(tmp_path, text: str | bytes, name: str = "f.yaml"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_aliases_and_merge_keys_within_the_bounds_are_read(tmp_path):
    path = _write(tmp_path, "a: &x {b: 1}\nc: *x\nd: {<<: *x, e: 2}\nf: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    data = read_yaml(path)
    assert data["c"] == {"b": 1} and data["d"] == {"b": 1, "e": 2}
    depth, node = 1, data["f"]
    while node:
        depth, node = depth + 1, node[0]
    assert depth == MAX_DEPTH - 1


@pytest.mark.parametrize("text, message", [
    (LAUGHS, f"its aliases expand to more than {MAX_NODES} values"),
    ("a: " + "[" * 5000 + "]" * 5000, f"line 1: nested more than {MAX_DEPTH} levels deep"),
    ("a:\n" + "".join(" " * (2 * i) + f"- k{i}:\n" for i in range(1, 80)), f"nested more than {MAX_DEPTH} levels"),
    ("a: &a [1, *a]\n", "line 1: an alias refers to the structure that contains it"),
    ("a: [1, 2\n", "line 2, column 1: YAML syntax error"),
])
def test_yaml_past_a_bound_is_refused_naming_the_file(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        read_yaml(path)
    assert str(e.value).startswith(f"{path}:") and message in str(e.value)


def test_a_file_over_the_size_bound_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr("lofw.reading.MAX_BYTES", 100)
    path = _write(tmp_path, "a: 1\n" * 30)
    with pytest.raises(ConfigError, match=r"150 bytes, more than the 100 a lofw input file may have"):
        read_yaml(path)


def test_json_files_get_the_same_located_refusals(tmp_path):
    assert read_json_file(_write(tmp_path, '{"a": [1, 2]}', "ok.json")) == {"a": [1, 2]}
    with pytest.raises(ConfigError, match=r"bad.json: line 2, column 1: not valid JSON"):
        read_json_file(_write(tmp_path, '{"a":\n', "bad.json"))
    with pytest.raises(ConfigError, match=r"deep.json: JSON nested too deeply"):
        read_json_file(_write(tmp_path, "[" * 200_000 + "]" * 200_000, "deep.json"))
    with pytest.raises(ConfigError, match=r"latin.json: not UTF-8 text \(byte 7: b'\\xe9'\)"):
        read_json_file(_write(tmp_path, b'{"a": "\xe9"}', "latin.json"))


@pytest.mark.parametrize("command", ["meta-train", "ablate"])
def test_the_commands_refuse_a_billion_laughs_with_one_line_and_write_nothing(command, tmp_path, capsys):
    body = "recipe: star\ntask: digits_mlp\n" if command == "meta-train" else "name: g\nbase: {task: digits_mlp}\n"
    path = _write(tmp_path, body + "extra:\n" + "".join("  " + line + "\n" for line in LAUGHS.splitlines()))
    argv = ["meta-train", "--config", str(path)] if command == "meta-train" else ["ablate", str(path)]
    assert cli([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: its aliases expand" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_model_card_that_is_not_json_names_the_file(tmp_path):
    from lofw.pretrained_loader import CARD, read_card

    (tmp_path / CARD).write_text("{not json")
    with pytest.raises(ConfigError, match=rf"{CARD}: line 1, column 2: not valid JSON.*re-export"):
        read_card(tmp_path)
    (tmp_path / CARD).write_text(json.dumps(["a list"]))
    with pytest.raises(ConfigError, match="not a lofw model card"):
        read_card(tmp_path)
