"""Does batch norm speed up training and make a deep network insensitive to its initializer?

Claim (lecture 6): batch norm keeps every layer's activations unit Gaussian, which improves gradient
flow, speeds up convergence and reduces the strong dependence on initialization.
Paper setting: Ioffe & Szegedy 2015 (MNIST: 3 fully connected hidden layers of 100 sigmoid units,
mini-batches of 60, 50,000 steps, the batch-norm net converging faster with stable activation
distributions; Inception on ImageNet: the same accuracy in 14x fewer steps, and training that does not
depend on a careful initialization).
Scaled down: a 6-hidden-layer, 64-unit ReLU MLP for 15 epochs on both presets (fashion_mnist: 10,000
training images), batch 128, a grid of norm x initializer (a good scale, too small, too large,
PyTorch's default).
Verdict: supported if, with too-small initial weights, the batch-norm net reaches a smaller area under
the val-loss curve than the plain one (it converges where the plain net stalls).  Smallest effect 0.14
nats x epochs: the val-loss default, 0.01 nats, at each of the 14 epoch intervals of the study's 15
epochs.  The other cells show speed at a good init (epochs_to_95 in runs.csv) and the spread across
initializers.
Run:   python run_all.py --study batchnorm          # 2 norms x 4 inits = 8 variants x seeds
Time:  digits about 2 min; fashion_mnist about 1 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
from ..study import Better, Study

EPOCHS = 15   # fixed for both presets: the smallest effect below is per epoch interval

STUDY = Study(
    name="batchnorm",
    question=__doc__,
    claim="Batch norm converges faster and is far less sensitive to the weight initialization.",
    mode="grid",
    base={"model.depth": 6, "model.width": 64, "trainer.max_epochs": EPOCHS},
    axes={"model.norm": ["none", "batch"],
          "model.init": ["kaiming_normal", "small_normal", "large_normal", "torch_default"]},
    control="norm=none,init=kaiming_normal",
    verdict=Better("norm=batch,init=small_normal", than=("norm=none,init=small_normal",),
                   metric="val_loss_auc", higher_is_better=False, delta=0.01 * (EPOCHS - 1)),
)
