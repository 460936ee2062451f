"""How much does the weight initializer matter for a deep plain ReLU MLP?

Claim (lecture 6): too-small random weights shrink activations towards zero, too-large ones saturate
them; Xavier/He scaling keeps them in range; all-zero weights cannot break symmetry.
Paper setting: He et al. 2015 (plain 22- and 30-layer ReLU nets on ImageNet: Glorot's Xavier init
stalls the 30-layer one, their gain-corrected init trains it); Glorot & Bengio 2010 (Xavier); LeCun
et al. 1998 (std 1/sqrt(fan_in)); Saxe et al. 2014 (orthogonal); the lecture's 10-layer, 500-unit demo.
Scaled down: fashion_mnist preset: 10 hidden ReLU layers of 128 units, no batch norm, SGD+momentum at
lr 0.05, batch 128, 10,000 training images, 10 epochs; digits preset (smoke): the 2x128 baseline MLP,
20 epochs.  Depth x initializer x nonlinearity is init_depth's grid.
Verdict: supported if He (kaiming_normal) init beats zeros and small_normal on final val accuracy
(paired t, Holm over the two).
Run:   python run_all.py --study initializers       # 10 variants (the baseline is He) x seeds
Time:  digits about 1 min; fashion_mnist about 1.5 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
from ..study import Better, Study

STUDY = Study(
    name="initializers",
    question=__doc__,
    claim="Scaled inits (Xavier, He) train well; zero init cannot break symmetry; bad scales stall.",
    axes={"model.init": ["zeros", "small_normal", "large_normal", "torch_default", "xavier_normal",
                         "xavier_uniform", "kaiming_normal", "kaiming_uniform", "lecun_normal", "orthogonal"]},
    verdict=Better("init=kaiming_normal", than=("init=zeros", "init=small_normal")),
)
