"""Initializer x nonlinearity x depth: which initial weight scale lets a deep plain network train?

Claim (lecture 6): in a deep net, too-small random weights (std 0.01) collapse the activations towards
zero layer after layer and the gradients with them; too-large ones (std 1) saturate tanh; Xavier
(Glorot & Bengio 2010: std sqrt(2 / (fan_in + fan_out)), 1/sqrt(fan_in) for the square hidden layers
here) keeps tanh activations in range; ReLU halves the variance per layer under Xavier, so deep ReLU
nets stall unless He init (std sqrt(2/fan_in)) restores it; all-zero weights cannot break the symmetry
between units.
Paper setting: the lecture's demo (10 tanh layers of 500 units, activation histograms per layer);
Glorot & Bengio 2010 (5 tanh/sigmoid layers of 1,000 units, standard vs normalized init); He et al.
2015 (plain 22- and 30-layer ReLU nets on ImageNet: Xavier stalls at 30 layers, He init trains).
Scaled down: 10 and 30 hidden layers of 64 units, no batch norm, plain SGD at lr 0.05, batch 128, on
both presets; fashion_mnist: 10,000 training images, 10 epochs; digits (smoke): 20 epochs.
"xavier" is the registry's xavier_normal, Glorot's init without any activation gain; "he" is
kaiming_normal with the activation's gain (lit_modules/layers.py).
Verdict: supported if, at depth 10 (the lecture's 10-layer pictures), He beats xavier, small and zeros
on ReLU and xavier beats small, large and zeros on tanh (final val accuracy), He beats xavier on ReLU at
depth 30 too, large init has more saturated tanh outputs at step 0 than xavier, and small init a smaller
activation std than xavier (diagnostics columns of summary.json; paired t, Holm within each part).  The
report draws the per-layer activation histograms, update/weight ratios and dead-unit fractions behind it.
Seeds: 5 where a preset takes the study's own: Holm over the rule's 9 comparisons asks p < 0.0056 of
the strongest, which a paired t over 3 seeds (2 degrees of freedom) reaches only at t > 13.
Run:   python run_all.py --study init_depth         # 5 inits x 2 activations x 2 depths = 20 variants x seeds
Time:  digits about 2 min plus about 1 min for the report's figures; fashion_mnist about 4 min of
       training with 2 workers (benchmarks/preset_budget.py)
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
    seeds=5,
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
