"""Initializer x nonlinearity x depth: which initial weight scale lets a deep plain network train?

Claim (lecture 6): in a deep net, too-small random weights (std 0.01) collapse the activations towards
zero layer after layer and the gradients with them; too-large ones (std 1) saturate tanh; Xavier
(Glorot & Bengio 2010: std sqrt(2 / (fan_in + fan_out)), 1/sqrt(fan_in) for the square hidden layers
here) keeps tanh activations in range; ReLU halves the variance per layer under Xavier, so deep ReLU
nets stall unless He init (std sqrt(2/fan_in)) restores it; all-zero weights cannot break the symmetry
between units.  10 and 30 hidden layers of 64 units, no batch norm, plain SGD.
"xavier" is the registry's xavier_normal, Glorot's init without any activation gain; "he" is
kaiming_normal with the activation's gain (lit_modules/layers.py).
Verdict: supported if, at depth 10 (the lecture's 10-layer pictures), He beats xavier, small and zeros
on ReLU and xavier beats small, large and zeros on tanh (final val accuracy), He beats xavier on ReLU at
depth 30 too, large init has more saturated tanh outputs at step 0 than xavier, and small init a smaller
activation std than xavier (diagnostics columns of summary.json; paired CIs over seeds).  The report draws
the per-layer activation histograms, update/weight ratios and dead-unit fractions behind it.
Measured: the report of `python run_all.py --study init_depth` gives the verdict and every value.
Run:   python run_all.py --study init_depth         # 5 inits x 2 activations x 2 depths = 20 variants x 3 seeds
Time:  1.4 min for the 60 runs (1 worker, 2-core machine at load ~4 from other jobs, digits; 85 s of
       CPU), plus about 1 min for the report's figures (measured with lecun_normal as "xavier"; with
       xavier_normal, 2 workers at load ~11: 229 s of run time over the 60 runs).
"""
from ..rules import AllOf
from ..study import Better, Study

INITS = {"small": "small_normal", "xavier": "xavier_normal", "he": "kaiming_normal", "large": "large_normal",
         "zeros": "zeros"}


def _v(init: str, activation: str, depth: int = 10) -> str:
    return f"init={init},activation={activation},depth={depth}"


STUDY = Study(
    name="init_depth",
    question=__doc__,
    claim="Small init collapses deep activations, large init saturates tanh, Xavier suits tanh, He keeps "
          "deep ReLU nets training where Xavier stalls; zero init cannot break symmetry.",
    mode="grid",
    base={"model.width": 64, "model.norm": "none", "optim.name": "sgd", "optim.lr": 0.05},
    axes={"model.init": INITS, "model.activation": ["relu", "tanh"], "model.depth": [10, 30]},
    control="init=he,activation=relu,depth=10",
    verdict=AllOf((
        Better(_v("he", "relu"), than=(_v("xavier", "relu"), _v("small", "relu"), _v("zeros", "relu"))),
        Better(_v("he", "relu", 30), than=(_v("xavier", "relu", 30),)),
        Better(_v("xavier", "tanh"), than=(_v("small", "tanh"), _v("large", "tanh"), _v("zeros", "tanh"))),
        Better(_v("large", "tanh"), than=(_v("xavier", "tanh"),), metric="initial_saturated_frac",
               higher_is_better=True),
        Better(_v("xavier", "tanh"), than=(_v("small", "tanh"),), metric="initial_act_std",
               higher_is_better=True),
    )),
)
