"""Does batch norm speed up training and make a deep network insensitive to its initializer?

Claim (lecture 6): batch norm keeps every layer's activations unit Gaussian, which improves gradient
flow, speeds up convergence and reduces the strong dependence on initialization.
Setting: a 6-hidden-layer ReLU MLP on digits for 15 epochs, grid of norm x initializer (a good scale,
too small, too large, PyTorch's default).
Verdict: supported if, with too-small initial weights, the batch-norm net reaches a smaller area under
the val-loss curve than the plain one (it converges where the plain net stalls).  The other cells
show speed at a good init (epochs_to_95 in runs.csv) and the spread across initializers.
Run:   python run_all.py --study batchnorm          # 2 norms x 4 inits = 8 variants x 3 seeds
Time:  2.4 min wall, 66 s CPU on 2 CPU cores shared with other jobs (load ~7; alone ~1 min)
"""
from ..study import Better, Study

STUDY = Study(
    name="batchnorm",
    question=__doc__,
    claim="Batch norm converges faster and is far less sensitive to the weight initialization.",
    mode="grid",
    base={"model.depth": 6, "model.width": 64, "trainer.max_epochs": 15},
    axes={"model.norm": ["none", "batch"],
          "model.init": ["kaiming_normal", "small_normal", "large_normal", "torch_default"]},
    control="norm=none,init=kaiming_normal",
    verdict=Better("norm=batch,init=small_normal", than=("norm=none,init=small_normal",),
                   metric="val_loss_auc", higher_is_better=False),
)
