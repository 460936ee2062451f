"""Do ensembles and weight averages beat a single model, and what do cheap versions of them give?

Claim (lecture 7): an ensemble of independently trained models (average their softmax) adds about 2%
accuracy; snapshot ensembles (one run, cyclic cosine schedule, average the snapshot at the end of each
cycle) give part of that for the cost of one run; Polyak/EMA and SWA averages of the weights help a
little.
Paper setting: Krizhevsky et al. 2012 (5 convnets averaged: 16.4% against 18.2% top-5 error on
ImageNet); Huang et al. 2017 (snapshot ensembles: ResNets/DenseNets on CIFAR, budgets of about 300
epochs split into 4-6 cosine cycles with restarts, Loshchilov & Hutter 2017's SGDR); Izmailov et al.
2018 (SWA: an equal average of the weights over the last part of training at a constant or cyclic
rate, CIFAR and ImageNet); Polyak & Juditsky 1992 (averaged iterates).
Scaled down: the baseline 2x128 ReLU MLP, 20 epochs on both presets (fashion_mnist: 10,000 training
images), so a snapshot cycle is 5 epochs; variants: the baseline (its seeds are the independent
ensemble), a single cosine decay, cosine with 4 restarts (snapshot ensemble of 4), EMA of the weights
(decay 0.95 per step), SWA over the last 25% of steps.  The ensembles table (<study>_ensembles.csv)
holds every ensemble, the stats table holds EMA/SWA against the baseline.
Verdict: supported if the ensemble of the baseline's seeds beats their mean test accuracy (paired over
test examples, smallest effect half a point).
Run:   python run_all.py --study ensembles          # 5 variants x seeds
Time:  digits about 1.3 min; fashion_mnist about 1 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
from ..study import Bundle, EnsembleGain, Study

STUDY = Study(
    name="ensembles",
    question=__doc__,
    claim="Ensembles of independent models add ~2% accuracy; snapshots give part of it for one run's "
          "cost; weight averaging (EMA, SWA) helps a little.",
    base={"trainer.max_epochs": 20},
    axes={"schedule": {"cosine": Bundle({"schedule.name": "cosine"}),
                       "snapshots": Bundle({"schedule.name": "cosine_restarts", "schedule.cycles": 4})},
          "averaging": {"ema": Bundle({"averaging.name": "ema", "averaging.decay": 0.95}),
                        "swa": Bundle({"averaging.name": "swa", "averaging.start": 0.75})}},
    verdict=EnsembleGain("baseline", kind="independent", split="test"),
)
