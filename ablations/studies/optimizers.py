"""Which update rule trains the baseline fastest, each at the learning rate its own sweep picks?

Claim (lecture 7): SGD is slow along shallow directions; momentum and Nesterov speed it up; adaptive
methods (AdaGrad, RMSProp, Adam) need less tuning; Adam is a good default.
Paper setting: Kingma & Ba 2015 (Adam): MNIST MLPs with 2 hidden layers of 1,000 ReLUs, mini-batches
of 128, against SGD with Nesterov momentum, AdaGrad and RMSProp, each at the best rate of a dense
search, for up to 200 epochs; Sutskever et al. 2013 (momentum, Nesterov); L-BFGS (Liu & Nocedal 1989)
full batch.
Scaled down: the baseline 2x128 ReLU MLP, batch 128 (fashion_mnist preset: 10,000 training images;
digits: all of them).  Fair by construction: stage 1 (`optimizers`) gives every optimizer in the
registry the same sweep: 6 log-spaced rates 1e-4..10, 5 epochs, 1 seed (whatever --seeds), with the
lecture's search-time cut (trainer.early_stop_factor=3): a rate whose epoch-mean training loss exceeds
3x its first mini-batch's loss stops as `stopped_early`, scored by the val accuracy it had reached.
Stage 2 (`optimizers_best`) runs each at its best rate (final val accuracy, mean over stage 1's
seeds) for 20 epochs on every seed, without the early stop.  The report warns when an optimizer's
best rate is at the edge of the sweep.
Verdict: (stage 2) supported if SGD+momentum has a smaller area under the val-loss curve than plain
SGD, paired over seeds.  Smallest effect 0.19 nats x epochs: the val-loss default, 0.01 nats, at each
of the 19 epoch intervals of stage 2's 20 epochs.
Run:   python run_all.py --study optimizers    # 8 x 6 rates x 1 seed, then 8 x seeds
Time:  digits about 1.5 min; fashion_mnist about 3.5 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
import pandas as pd

from lit_modules import OPTIMIZERS

from ..study import Better, Bundle, Study

CLAIM = "Momentum beats plain SGD; Adam converges fast with little tuning."
FULL_EPOCHS = 20   # stage 2 on every preset: the smallest effect of its verdict is per epoch interval


def best_rates(sweep: pd.DataFrame) -> Study:
    """Stage 2: each optimizer at the rate with the best mean final val accuracy over seeds (a diverged
    run scores worst; ties go to the smaller rate)."""
    score = sweep.assign(score=sweep.final_val_acc.fillna(-1.0))
    means = score.groupby(["optim.name", "optim.lr"], sort=False).score.mean().reset_index()
    best = means.sort_values(["optim.name", "score", "optim.lr"], ascending=[True, False, True],
                             kind="stable").drop_duplicates("optim.name").set_index("optim.name")["optim.lr"]
    names = list(dict.fromkeys(sweep["optim.name"]))
    return Study(
        name="optimizers_best",
        question="Stage 2 of `optimizers`: every optimizer at the learning rate its own stage-1 sweep chose, "
                 "full length, every seed.",
        claim=CLAIM,
        mode="grid",
        base={"trainer.max_epochs": FULL_EPOCHS},
        axes={"optimizer": {n: Bundle({"optim.name": n, "optim.lr": float(best[n])}) for n in names}},
        control="optimizer=sgd",
        verdict=Better("optimizer=momentum", than=("optimizer=sgd",), metric="val_loss_auc",
                       higher_is_better=False, delta=0.01 * (FULL_EPOCHS - 1)),
    )


STUDY = Study(
    name="optimizers",
    question=__doc__,
    claim=CLAIM,
    mode="grid",
    seeds=1,
    fixed_seeds=True,
    base={"trainer.max_epochs": 5, "trainer.early_stop_factor": 3.0},
    axes={"optimizer": {n: Bundle({"optim.name": n}) for n in OPTIMIZERS.names()},
          "optim.lr": [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]},
    control="optimizer=momentum,lr=0.1",
    tuned=("optim.lr",),
    then=best_rates,
)
