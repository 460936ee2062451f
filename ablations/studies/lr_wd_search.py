"""Random search over learning rate and weight decay, sampled log-uniformly.

Claim (lecture 6, Bergstra & Bengio 2012): random search finds good values faster than a grid with
the same budget, because only a few hyperparameters matter; sample scales log-uniformly.
Run:   python run_all.py --study lr_wd_search       # 12 samples x 1 seed
Time:  under 1 min on 2 CPU cores (digits)
"""
from ..study import LogUniform, Study

STUDY = Study(
    name="lr_wd_search",
    question=__doc__,
    claim="Log-uniform random search finds a good learning rate within a small budget.",
    mode="random",
    samples=12,
    seeds=1,
    axes={"optim.lr": LogUniform(1e-3, 1.0), "optim.weight_decay": LogUniform(1e-6, 1e-2)},
)
