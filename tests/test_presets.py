"""Presets size every study for a dataset without changing what the study varies."""
import pytest

from ablations.grid import plan
from ablations.presets import PRESETS, Preset
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
