"""Do ensembles and weight averages beat a single model, and what do cheap versions of them give?

Claim (lecture 7): an ensemble of independently trained models (average their softmax) adds about 2%
accuracy; snapshot ensembles (Huang et al.: one run, cyclic cosine schedule, average the snapshot at the
end of each cycle) give part of that for the cost of one run; Polyak/EMA and SWA averages of the
weights help a little.
Variants: the baseline (its 3 seeds are the independent ensemble), a single cosine decay, cosine with 4
restarts (snapshot ensemble of 4), EMA of the weights (decay 0.95 per step: digits runs take about 220
steps), SWA over the last 25% of steps.  The ensembles table (<study>_ensembles.csv) holds every ensemble,
the stats table holds EMA/SWA against the baseline.
Verdict: supported if the ensemble of the baseline's seeds beats their mean test accuracy with a 95%
bootstrap interval (over test examples) above zero.
Run:   python run_all.py --study ensembles          # 5 variants x 3 seeds
Time:  about 1.3 min on 2 CPU cores (digits, 3 seeds): measured 77 s wall for the command, 25 s of
       it training the 15 runs, the rest the report; pessimistic, other jobs shared the CPU.
"""
from ..study import Bundle, EnsembleGain, Study

STUDY = Study(
    name="ensembles",
    question=__doc__,
    claim="Ensembles of independent models add ~2% accuracy; snapshots give part of it for one run's "
          "cost; weight averaging (EMA, SWA) helps a little.",
    axes={"schedule": {"cosine": Bundle({"schedule.name": "cosine"}),
                       "snapshots": Bundle({"schedule.name": "cosine_restarts", "schedule.cycles": 4})},
          "averaging": {"ema": Bundle({"averaging.name": "ema", "averaging.decay": 0.95}),
                        "swa": Bundle({"averaging.name": "swa", "averaging.start": 0.75})}},
    verdict=EnsembleGain("baseline", kind="independent", split="test"),
)
