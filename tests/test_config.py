"""Configs: dotted overrides, typed strings from the command line, and errors that name the bad value."""
import dataclasses

import pytest

from ablations import RunConfig, baseline, resolve, run_id
from lit_modules import ConfigError, OptimConfig, leaf_keys, override


def test_override_replaces_dotted_keys_and_keeps_the_rest():
    cfg = override(baseline(), {"optim.lr": 0.1, "model.activation": "tanh"})
    assert cfg.optim.lr == 0.1 and cfg.model.activation == "tanh"
    assert cfg.optim.name == baseline().optim.name and cfg.data == baseline().data


def test_strings_from_the_command_line_are_typed_by_the_field():
    cfg = resolve({"optim.lr": "0.1", "trainer.max_epochs": "3", "model.channels": "8,16",
                   "data.train_size": "none", "trainer.progress_bar": "true", "schedule.final": "0.5"})
    assert cfg.optim.lr == 0.1 and cfg.trainer.max_epochs == 3 and cfg.model.channels == (8, 16)
    assert cfg.data.train_size is None and cfg.trainer.progress_bar is True and cfg.schedule.final == 0.5


def test_a_sub_config_can_be_replaced_whole_or_by_dict():
    by_instance = override(baseline(), {"optim": OptimConfig(name="adam", lr=1e-3)})
    by_dict = override(baseline(), {"optim": {"name": "adam", "lr": 1e-3}})
    assert by_instance.optim.name == by_dict.optim.name == "adam"
    assert by_dict.optim.lr == by_instance.optim.lr == 1e-3


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        baseline().optim.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("changes, words", [
    ({"optim.learning_rate": 0.1}, ["optim.learning_rate", "optim.lr", "optim.momentum"]),
    ({"nope": 1}, ["nope", "valid keys"]),
    ({"optim.lr.x": 1}, ["optim.lr.x"]),
    ({"model.activation": "swishy"}, ["model.activation", "swishy", "relu", "tanh", "maxout"]),
    ({"optim.name": "adamax"}, ["optim.name", "adamax", "lbfgs", "nesterov"]),
    ({"model.init": "he"}, ["he", "kaiming_normal", "xavier_uniform"]),
    ({"model.norm": "instance"}, ["instance", "batch", "group"]),
    ({"schedule.name": "cyclic"}, ["cyclic", "cosine", "inverse_time"]),
    ({"model.network": "vit"}, ["vit", "resnet", "convnet"]),
    ({"data.name": "imagenet"}, ["imagenet", "digits", "cifar100"]),
    ({"data.preprocess": "whiten"}, ["whiten", "zca_whiten"]),
    ({"data.augment": "flip+rotate"}, ["rotate", "color_jitter"]),
    ({"optim.lr": "fast"}, ["optim.lr", "fast", "float"]),
    ({"trainer.max_epochs": 2.5}, ["max_epochs", "2.5"]),
    ({"optim.lr": -0.1}, ["optim.lr", "-0.1"]),
    ({"optim.momentum": 1.0}, ["momentum", "1.0"]),
    ({"model.dropout": 1.0}, ["dropout", "1.0"]),
    ({"data.batch_size": 0}, ["batch_size", "0"]),
    ({"data.val_fraction": 1.5}, ["val_fraction", "1.5"]),
    ({"trainer.max_epochs": 0}, ["max_epochs", "0"]),
    ({"seed": -1}, ["seed", "-1"]),
    ({"trainer.accelerator": "tpu9"}, ["tpu9", "cpu", "cuda"]),
])
def test_bad_input_names_the_value_and_the_choices(changes, words):
    with pytest.raises(ConfigError) as err:
        resolve(changes)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_run_id_is_a_content_address():
    assert run_id(baseline()) == run_id(RunConfig())
    assert run_id(resolve({"seed": 1})) != run_id(baseline())
    assert run_id(resolve({"optim.lr": 0.01})) != run_id(baseline())
    # Where a run trains or whether it shows a progress bar does not change what it is.
    assert run_id(resolve({"trainer.accelerator": "cpu", "trainer.progress_bar": True})) == run_id(baseline())


def test_every_leaf_key_is_overridable():
    cfg = baseline()
    for key in leaf_keys(cfg):
        assert override(cfg, {key: _get(cfg, key)}) == cfg, key


def _get(cfg, key):
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg
