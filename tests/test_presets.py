"""Presets size every study for a dataset without changing what the study varies."""
import importlib.util
from pathlib import Path

import pytest

from ablations.grid import plan
from ablations.presets import PRESETS, Preset
from ablations.results import METRICS
from ablations.rules import AllOf
from ablations.studies import STUDIES
from ablations.study import Study
from lit_modules import ConfigError


@pytest.mark.parametrize("name", PRESETS.names())
def test_every_preset_plans_every_study(name):
    preset = PRESETS.get(name)
    assert set(preset.per_study) <= set(STUDIES.names()), "per_study names a study that does not exist"
    runs = plan([STUDIES.get(s) for s in STUDIES.names()], seeds=1, preset=preset)
    assert runs
    for key, value in preset.base.items():
        section, field = key.split(".")
        # The base sits under the studies: most runs keep it, none is forced to it.
        assert any(getattr(getattr(r.cfg, section), field) == value for r in runs), key


def _budget():
    """benchmarks/preset_budget.py, loaded from this checkout."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "preset_budget.py"
    spec = importlib.util.spec_from_file_location("preset_budget", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", STUDIES.names())
def test_fashion_mnist_sizes_every_study_and_stage_without_a_key_it_varies(name):
    """The fashion_mnist preset plans every study, the second stage of the staged ones included, on
    Fashion-MNIST, and its settings for a study never touch a key the study varies."""
    preset, study = PRESETS.get("fashion_mnist"), STUDIES.get(name)
    varied = {k for t in study.trials(seeds=1) for k in t.overrides if k not in study.base}
    assert not set(preset.per_study.get(name, {})) & varied
    runs = _budget().planned("fashion_mnist", [name], None)
    stages = {stage for stage, _ in runs}
    assert stages == ({name, *(["search_fine"] if name == "search" else []),
                       *(["optimizers_best"] if name == "optimizers" else [])})
    assert {r.cfg.data.name for _, r in runs} == {"fashion_mnist"}
    # Each study's own seed count (3 unless its file says why more): fashion_mnist sets none.
    assert {r.cfg.seed for stage, r in runs if stage == name} == set(range(study.seeds))


@pytest.mark.parametrize("name", STUDIES.names())
def test_a_val_loss_area_verdict_fixes_its_epochs_and_scales_its_smallest_effect(name):
    """val_loss_auc adds up the val loss over the epoch intervals, so a rule on it sets its smallest
    effect for the epochs its study fixes on every preset: the val-loss default at each interval."""
    loss_default = METRICS.get("val_loss").smallest_effect
    study = STUDIES.get(name)
    follow = _budget().stage_two(study, plan([study], seeds=1))
    for stage in [study, *([follow] if follow else [])]:
        rules = stage.verdict.rules if isinstance(stage.verdict, AllOf) else (stage.verdict,)
        for rule in (r for r in rules if getattr(r, "metric", None) == "val_loss_auc"):
            epochs = stage.base.get("trainer.max_epochs")
            assert epochs, f"{stage.name}: a val_loss_auc verdict needs the study to fix its epochs"
            assert rule.delta == pytest.approx(loss_default * (epochs - 1)), stage.name
            for preset in PRESETS.names():   # no preset moves them
                assert "trainer.max_epochs" not in PRESETS.get(preset).per_study.get(stage.name, {})


def test_budget_groups_runs_by_cost_and_counts_the_second_stages():
    """The estimate's plan: stage 2 is derived (8 optimizers x seeds after the 48-rate sweep), and runs
    that differ only in what does not change their cost (seed, learning rate) share one timed shape."""
    budget = _budget()
    runs = budget.planned("digits", ["optimizers"], 2)
    by_stage = {s: sum(stage == s for stage, _ in runs) for s in ("optimizers", "optimizers_best")}
    assert by_stage == {"optimizers": 48, "optimizers_best": 8 * 2}
    shapes = {budget.shape(r) for stage, r in runs if stage == "optimizers"}
    assert len(shapes) == 8                  # one per optimizer: its 6 rates cost the same
    landscape = budget.planned("digits", ["landscapes"], 2)
    assert len({budget.shape(r) for _, r in landscape}) == 8 * 3   # not fits: seeds share a shape


def test_precedence_base_study_per_study_user():
    study = Study("s", "claim", axes={"model.activation": ["tanh"]},
                  base={"trainer.max_epochs": 3, "data.train_size": 100})
    preset = Preset("p", base={"trainer.max_epochs": 9, "model.width": 16, "data.train_size": 50},
                    per_study={"s": {"data.train_size": 400}})
    runs = plan([study], seeds=1, preset=preset)
    cfgs = [r.cfg for r in runs]
    assert all(c.trainer.max_epochs == 3 and c.model.width == 16 and c.data.train_size == 400 for c in cfgs)
    user = plan([study], {"data.train_size": 200}, seeds=1, preset=preset)
    assert all(r.cfg.data.train_size == 200 for r in user)


def test_a_preset_may_not_set_what_a_study_varies():
    study = Study("s", "claim", axes={"model.activation": ["tanh", "relu"]})
    preset = Preset("p", per_study={"s": {"model.activation": "relu"}})
    with pytest.raises(ConfigError, match="model.activation"):
        plan([study], seeds=1, preset=preset)


def test_preset_seeds_apply_unless_given():
    study = Study("s", "claim", axes={"model.activation": ["tanh"]}, seeds=3)
    preset = Preset("p", seeds=2)
    assert {r.cfg.seed for r in plan([study], preset=preset)} == {0, 1}
    assert {r.cfg.seed for r in plan([study], seeds=1, preset=preset)} == {0}


def _fake_cifar10(root, per_class: int = 30, seed: int = 0):
    """CIFAR-10 in torchvision's pickled layout: each class a different mean colour plus noise, so a
    network that reads the files right learns them in a few steps."""
    import pickle

    import numpy as np
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    colours = rng.uniform(40, 215, size=(10, 3))

    def batch(n):
        labels = np.repeat(np.arange(10), n)
        images = colours[labels][:, :, None, None] + rng.normal(0, 10, size=(labels.size, 3, 32, 32))
        return {"data": images.clip(0, 255).astype(np.uint8).reshape(labels.size, -1), "labels": labels.tolist()}

    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(batch(per_class // 5 if name != "test_batch" else per_class // 3)))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))


@pytest.mark.slow
def test_cifar_preset_baseline_learns_from_torchvision_files(tmp_path, monkeypatch):
    """No GPU or CIFAR here: the preset's ResNet baseline (batch norm, flip+crop, per-channel centering,
    cosine with warmup) reads torchvision's CIFAR-10 files and learns, on a small stand-in for them."""
    import torchvision

    from ablations.runner import train
    _fake_cifar10(tmp_path / "data")
    # torchvision checks each file's md5 against the real CIFAR's; the stand-in cannot match them.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    runs = plan([STUDIES.get("activations")], {"data.data_dir": str(tmp_path / "data"), "data.download": False,
                                               "trainer.max_epochs": 3, "data.batch_size": 50,
                                               "trainer.diagnostics_every": 0},
                seeds=1, preset=PRESETS.get("cifar10"))
    cfg = next(r.cfg for r in runs if r.name == "baseline")
    assert (cfg.model.network, cfg.model.norm, cfg.data.augment) == ("resnet", "batch", "flip+crop")
    summary = train(cfg, tmp_path / "results")
    assert summary["status"] == "completed", summary.get("error")
    assert summary["test_acc"] > 0.5     # chance is 0.1
