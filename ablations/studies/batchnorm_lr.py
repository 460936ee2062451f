"""Does batch norm let the network train at larger learning rates?

Claim (lecture 6): batch norm improves gradient flow, allows higher learning rates and reduces the
dependence on initialization.
Verdict: supported if at the largest rate the batch-norm net beats the plain one on final val accuracy.
Run:   python run_all.py --study batchnorm_lr       # 2 norms x 4 rates = 8 variants x 3 seeds
Time:  about 1 min on 2 CPU cores (digits)
"""
from ..study import Better, Study

STUDY = Study(
    name="batchnorm_lr",
    question=__doc__,
    claim="Batch norm tolerates larger learning rates than the same network without it.",
    mode="grid",
    axes={"model.norm": ["none", "batch"], "optim.lr": [0.01, 0.05, 0.2, 0.8]},
    control="norm=none,lr=0.05",
    verdict=Better("norm=batch,lr=0.8", than=("norm=none,lr=0.8",)),
)
