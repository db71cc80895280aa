"""Bounded YAML: alias bombs and recursive documents refused before any value is built, numbers
written as 1e-3 read as numbers, and error messages that never echo megabytes."""

import time

import pytest

from core import yaml_text
from core.errors import shown
from serving.plane.repository import ModelConfigError, read_model_config
from serving.settings import BatchingOptions
from training.config import ConfigError, build_config, load_yaml

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


def test_an_alias_bomb_is_refused_at_once():
    start = time.perf_counter()
    with pytest.raises(yaml_text.YamlError, match="more than 100,000 values"):
        yaml_text.load(BOMB)
    assert time.perf_counter() - start < 1.0
    assert yaml_text.load("a: &a [1, 2]\nb: [*a, *a]") == {"a": [1, 2], "b": [[1, 2], [1, 2]]}


def test_a_recursive_document_is_refused():
    with pytest.raises(yaml_text.YamlError, match="recursive"):
        yaml_text.load("a: &a [1, *a]")


def test_exponents_without_a_dot_are_numbers():
    assert yaml_text.load("lr: 1e-3\nb: -2E+2\nc: 1.5e3\nd: e5") == {
        "lr": 0.001, "b": -200.0, "c": 1500.0, "d": "e5"}  # fmt: skip


def test_configs_refuse_a_bomb_and_read_1e_3(tmp_path):
    (tmp_path / "bomb.yaml").write_text(BOMB)
    with pytest.raises(ConfigError, match="not valid YAML: it expands"):
        load_yaml(tmp_path / "bomb.yaml")
    with pytest.raises(ModelConfigError, match="it expands"):
        read_model_config(str(tmp_path / "bomb.yaml"), BatchingOptions())
    (tmp_path / "lr.yaml").write_text("lr: 1e-3\n")
    assert build_config(load_yaml(tmp_path / "lr.yaml")).lr == 0.001


def test_messages_echo_at_most_a_few_hundred_characters():
    assert shown("x" * 10) == "'xxxxxxxxxx'"
    text = shown("x" * 1_000_000)
    assert len(text) < 260 and text.endswith("... (1,000,002 characters)")
    with pytest.raises(ConfigError) as error:
        build_config({"name": ["x" * 1_000_000]})
    assert len(str(error.value)) < 500
