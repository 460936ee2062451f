"""Does the hidden nonlinearity change how fast and how well the baseline MLP trains?

Claim (lecture 6): ReLU converges much faster than sigmoid and tanh; sigmoid saturates and kills
gradients. Leaky ReLU, PReLU, ELU, SELU and Maxout fix ReLU's dead units at some cost.
Verdict: supported if ReLU's area under the val-loss curve is below sigmoid's and tanh's (paired CIs).
Run:   python run_all.py --study activations        # 11 variants x 3 seeds
Time:  about 1 min on 2 CPU cores (digits)
"""
from ..study import Better, Study

STUDY = Study(
    name="activations",
    question=__doc__,
    claim="ReLU converges faster than sigmoid and tanh; sigmoid saturates.",
    axes={"model.activation": ["sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "selu", "maxout",
                               "gelu", "silu"]},
    verdict=Better("activation=relu", than=("activation=sigmoid", "activation=tanh"), metric="val_loss_auc",
                   higher_is_better=False),
)
