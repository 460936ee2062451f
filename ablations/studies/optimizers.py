"""Which update rule trains the baseline fastest, each at a sensible learning rate?

Claim (lecture 7): SGD is slow along shallow directions; momentum and Nesterov speed it up; adaptive
methods (AdaGrad, RMSProp, Adam) need less tuning; Adam is a good default.
Verdict: supported if SGD+momentum has a smaller area under the val-loss curve than plain SGD.
Run:   python run_all.py --study optimizers         # 8 optimizers x 3 seeds
Time:  about 1 min on 2 CPU cores (digits)
"""
from ..study import Better, Bundle, Study


def _opt(name: str, lr: float) -> Bundle:
    # L-BFGS uses the whole training set per step; the others use the baseline's mini-batches.
    return Bundle({"optim.name": name, "optim.lr": lr})


STUDY = Study(
    name="optimizers",
    question=__doc__,
    claim="Momentum beats plain SGD; Adam converges fast with little tuning.",
    axes={"optimizer": {"sgd": _opt("sgd", 0.1), "momentum": _opt("momentum", 0.05),
                        "nesterov": _opt("nesterov", 0.05), "adagrad": _opt("adagrad", 0.05),
                        "rmsprop": _opt("rmsprop", 1e-3), "adam": _opt("adam", 1e-3),
                        "adamw": _opt("adamw", 1e-3), "lbfgs": _opt("lbfgs", 1.0)}},
    verdict=Better("optimizer=momentum", than=("optimizer=sgd",), metric="val_loss_auc", higher_is_better=False),
)
