"""How do the update rules move on 2-D toy losses: a taco-shell valley, a saddle, noisy gradients?

Claim (lecture 7): on an ill-conditioned quadratic plain SGD jitters along the steep direction and
crawls along the shallow one; momentum and Nesterov overshoot the minimum and come back, ending
closer; SGD gets stuck near a saddle point where momentum and adaptive methods (Adam) escape; noisy
(mini-batch) gradients keep SGD from settling at the minimum.
Paper setting: the lecture's 2-D pictures (a valley 4x steeper one way than the other, a saddle,
Dauphin et al. 2014's argument that saddles, not local minima, slow high-dimensional training).
Scaled down: nothing to scale: 80 steps of each update rule on each 2-D function, one learning rate
per rule on every function, no data set, the same on every preset.
Verdict: supported if, from each run's trajectory (all paired by seed): SGD's y changes sign on >= 75%
of its 80 taco steps; momentum's x overshoots the minimum where SGD's does not and ends closer to it;
momentum and Adam leave the saddle (|y| >= 0.15) sooner than SGD; SGD's loss over its last 20 steps is
higher with noisy gradients than without.
Run:   python run_all.py --study landscapes         # 8 optimizers x 3 functions x seeds (seeds
                                                    # matter only for the noisy function)
Time:  about 1 min on every preset (pure torch on 2 parameters; most of it start-up and the report)
Note:  weight decay is 0 here, so AdamW takes exactly Adam's path.
"""
from ..rules import AllOf, Holds
from ..study import Better, Bundle, Study

# One learning rate per update rule, the same on every function: SGD at 0.45 is as fast as the steep
# direction allows (lr x curvature 4 = 1.8 < 2); momentum's effective step is lr / (1 - 0.9).
LRS = {"sgd": 0.45, "momentum": 0.2, "nesterov": 0.2, "adagrad": 1.0, "rmsprop": 0.05, "adam": 0.1,
       "adamw": 0.1, "lbfgs": 1.0}


def _v(optimizer: str, function: str) -> str:
    return f"optimizer={optimizer},function={function}"


STUDY = Study(
    name="landscapes",
    question=__doc__,
    claim="SGD zig-zags and crawls in a taco-shell valley and stalls at saddles; momentum overshoots and "
          "corrects; momentum and Adam escape saddles; noise keeps SGD from settling.",
    mode="grid",
    base={"trainer.procedure": "landscape", "optim.weight_decay": 0.0},
    axes={"optimizer": {name: Bundle({"optim.name": name, "optim.lr": lr}) for name, lr in LRS.items()},
          "landscape.function": ["taco", "saddle", "noisy"]},
    control="optimizer=sgd,function=taco",
    verdict=AllOf((
        Holds(_v("sgd", "taco"), "steep_flips", ">=", 60),
        Holds(_v("sgd", "taco"), "overshoot", "==", 0.0),
        Holds(_v("momentum", "taco"), "overshoot", ">", 0.05),
        Better(_v("momentum", "taco"), than=(_v("sgd", "taco"),), metric="distance", higher_is_better=False),
        Better(_v("momentum", "saddle"), than=(_v("sgd", "saddle"),), metric="escape_step", higher_is_better=False),
        Better(_v("adam", "saddle"), than=(_v("sgd", "saddle"),), metric="escape_step", higher_is_better=False),
        Better(_v("sgd", "taco"), than=(_v("sgd", "noisy"),), metric="tail_loss", higher_is_better=False),
    )),
)
