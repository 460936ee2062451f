"""How much does the weight initializer matter for the baseline MLP?

Claim (lecture 6): too-small random weights shrink activations towards zero, too-large ones saturate
them; Xavier/He scaling keeps them in range; all-zero weights cannot break symmetry.
Verdict: supported if He (kaiming_normal) init beats zeros and small_normal on final val accuracy.
Run:   python run_all.py --study initializers       # 11 variants x 3 seeds
Time:  about 1 min on 2 CPU cores (digits)
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
