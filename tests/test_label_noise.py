"""data.label_noise: corrupted training labels (Zhang et al. 2017) and the memorization they let us measure."""
import pytest
import torch

from ablations import run_one
from datamodules import DataConfig, ImageDataModule
from lit_modules import ConfigError
from reports.stats import OUTCOMES


def _dm(**changes) -> ImageDataModule:
    dm = ImageDataModule(DataConfig(**changes), seed=0)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_label_noise_corrupts_exactly_round_frac_n_training_labels_to_other_classes():
    clean, noisy = _dm(), _dm(label_noise=0.3)
    n = len(clean.y_train)
    changed = noisy.y_train != clean.y_train
    assert int(changed.sum()) == round(0.3 * n) == int(noisy.corrupted.sum())
    assert torch.equal(changed, noisy.corrupted)                       # every corrupted label is wrong
    assert torch.equal(noisy.y_train_true, clean.y_train) and torch.equal(noisy.x_train, clean.x_train)
    # The wrong labels spread over the other classes: each of the 9 shifts gets about 1/9 of them.
    shifts = (noisy.y_train - clean.y_train)[changed] % 10
    counts = torch.bincount(shifts, minlength=10)
    assert counts[0] == 0 and int(counts[1:].min()) > 0.5 * len(shifts) / 9
    # Validation and test are untouched.
    for split in ("x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(noisy, split), getattr(clean, split)), split


def test_label_noise_is_seeded_by_split_seed_and_nested_across_levels():
    a, b = _dm(label_noise=0.2), _dm(label_noise=0.2)
    assert torch.equal(a.y_train, b.y_train)                           # same config, same corruption
    other = _dm(label_noise=0.2, split_seed=1)                          # another split_seed: other examples
    picked = lambda dm: set(dm.train_indices[dm.corrupted].tolist())   # noqa: E731 (dataset indices)
    assert len(picked(other)) == len(picked(a)) and picked(other) != picked(a)
    more = _dm(label_noise=0.4)
    assert bool((more.corrupted | ~a.corrupted).all())                 # 20%'s examples are among 40%'s...
    assert torch.equal(more.y_train[a.corrupted], a.y_train[a.corrupted])   # ...with the same wrong labels


def test_label_noise_stays_within_a_class_subset():
    dm = _dm(classes=(5, 6, 7), label_noise=0.5)
    assert set(dm.y_train.unique().tolist()) <= {0, 1, 2}
    assert bool((dm.y_train[dm.corrupted] != dm.y_train_true[dm.corrupted]).all())


@pytest.mark.parametrize("value", [-0.1, 1.0, float("nan"), "lots"])
def test_bad_label_noise_fails_naming_the_key(value):
    with pytest.raises(ConfigError, match="label_noise"):
        DataConfig(label_noise=value)


def test_a_noisy_run_records_memorization_and_a_clean_run_does_not(tmp_path):
    tiny = {"data.train_size": 200, "trainer.max_epochs": 2, "data.batch_size": 32, "trainer.diagnostics_every": 0}
    noisy = run_one({**tiny, "data.label_noise": 0.4}, tmp_path)
    assert noisy["status"] == "completed" and noisy["corrupted_n"] == 80
    assert 0.0 <= noisy["memorized_frac"] <= 1.0 and 0.0 <= noisy["corrupted_true_acc"] <= 1.0
    assert noisy["memorized_frac"] + noisy["corrupted_true_acc"] <= 1.0   # a label is one or the other
    clean = run_one(tiny, tmp_path)
    assert "memorized_frac" not in clean and "corrupted_n" not in clean


@pytest.mark.slow
def test_an_unregularized_net_memorizes_the_corrupted_labels(tmp_path):
    """Zhang et al. 2017: trained long enough, a wide net fits the wrong labels too; before that, it
    labels most corrupted examples with their true class (it learns the pattern first)."""
    base = {"data.train_size": 200, "data.batch_size": 25, "data.label_noise": 0.4, "model.width": 512,
            "optim.weight_decay": 0.0, "trainer.diagnostics_every": 0}
    early = run_one({**base, "trainer.max_epochs": 2}, tmp_path)
    late = run_one({**base, "trainer.max_epochs": 15}, tmp_path)
    assert early["corrupted_true_acc"] > early["memorized_frac"]
    assert late["memorized_frac"] > 0.9 and late["clean_train_acc"] > 0.95, late


def test_the_label_noise_study_expands_to_a_grid_and_its_noisy_runs_record_memorization(tmp_path):
    import pandas as pd

    from ablations.grid import plan
    from ablations.runner import train
    from ablations.studies import STUDIES
    from reports.verdicts import evaluate

    study = STUDIES.get("label_noise")
    runs = plan([study], {"trainer.max_epochs": 1, "data.train_size": 200, "trainer.diagnostics_every": 0}, seeds=1)
    variants = {t.variant: r for r in runs for t in r.trials}
    assert len(variants) == 6 and variants["training=mixup,label_noise=0.4"].cfg.data.mix_alpha == 8.0
    rows = []
    for name in ("training=erm,label_noise=0.4", "training=mixup,label_noise=0.4"):
        summary = train(variants[name].cfg, tmp_path)
        assert summary["corrupted_n"] == 80 and 0.0 <= summary["memorized_frac"] <= 1.0
        rows.append({"variant": name, "seed": 0, **summary})
    memorized = study.verdict.rules[1].to_dict()
    verdict, why, *_ = evaluate(memorized, pd.DataFrame(rows).assign(status="completed"))
    assert "memorized_frac" in why and verdict in OUTCOMES
