"""Does batch norm let the network train at larger learning rates?

Claim (lecture 6): batch norm improves gradient flow, allows higher learning rates and reduces the
dependence on initialization.
Paper setting: Ioffe & Szegedy 2015: on ImageNet, Inception with batch norm trained at 5x and 30x the
plain net's learning rate (BN-x5, BN-x30) and reached its accuracy in far fewer steps; their MNIST
check is 3 fully connected hidden layers of 100 units, mini-batches of 60, 50,000 steps.
Scaled down: fashion_mnist preset: 3 hidden ReLU layers of 100 units, batch 60, SGD+momentum, 10,000
training images, 10 epochs (1,670 steps), rates 0.01 to 0.8 (a 80x range); digits preset (smoke): the
2x128 baseline MLP, 20 epochs.
Seeds: 6 where a preset takes the study's own (digits adds its own rounds): if the plain net's loss
turns non-finite at the top rate, its runs have no accuracy, the comparison falls back to the exact
sign test, and that needs 6 seeds to reach p < 0.05 (5 of 5 wins gives 0.0625).
Verdict: supported if at the largest rate the batch-norm net beats the plain one on final val accuracy.
Run:   python run_all.py --study batchnorm_lr       # 2 norms x 4 rates = 8 variants x seeds
Time:  digits about 1 min; fashion_mnist about 1.5 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
from ..study import Better, Study

STUDY = Study(
    name="batchnorm_lr",
    question=__doc__,
    claim="Batch norm tolerates larger learning rates than the same network without it.",
    mode="grid",
    seeds=6,
    axes={"model.norm": ["none", "batch"], "optim.lr": [0.01, 0.05, 0.2, 0.8]},
    control="norm=none,lr=0.05",
    verdict=Better("norm=batch,lr=0.8", than=("norm=none,lr=0.8",)),
)
