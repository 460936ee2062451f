"""Does decaying the learning rate help, and does it help SGD+momentum more than Adam?

Claim (lecture 7): SGD+momentum needs its learning rate decayed (step, exponential, 1/t, cosine) to
settle into a minimum; Adam adapts its steps and gains less from a schedule; warmup helps at the start.
Paper setting: He et al. 2016 (ResNets on CIFAR-10: SGD+momentum 0.9 at lr 0.1, batch 128, divided by
10 at 32k and 48k of 64k iterations); Loshchilov & Hutter 2017 (cosine annealing, SGDR); Goyal et al.
2017 (linear warmup over the first 5 epochs); Kingma & Ba 2015 (Adam at 1e-3 with no schedule).
Scaled down: the baseline 2x128 ReLU MLP, batch 128, 20 epochs on both presets (fashion_mnist: 10,000
training images, 1,580 steps), a grid of optimizer x schedule: SGD+momentum at He et al.'s 0.1 (with
momentum 0.9 an effective step of 1.0, high enough that a constant rate keeps bouncing) and Adam at
3e-3; "warmup" is cosine after a linear warmup over the first 10% of training.
Verdict: supported if cosine decay gains more final val accuracy over a constant rate for SGD+momentum
than it gains for Adam (per-seed difference of differences, paired t).
Run:   python run_all.py --study schedules          # 2 optimizers x 6 schedules = 12 variants x seeds
Time:  digits about 3 min; fashion_mnist about 2 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
from ..study import Bundle, Interaction, Study

STUDY = Study(
    name="schedules",
    question=__doc__,
    claim="Learning-rate decay helps SGD+momentum, more than it helps Adam.",
    mode="grid",
    base={"trainer.max_epochs": 20},
    axes={"optimizer": {"momentum": Bundle({"optim.name": "momentum", "optim.lr": 0.1}),
                        "adam": Bundle({"optim.name": "adam", "optim.lr": 3e-3})},
          "schedule": {"constant": Bundle({"schedule.name": "constant"}),
                       "step": Bundle({"schedule.name": "step"}),
                       "exponential": Bundle({"schedule.name": "exponential"}),
                       "inverse_time": Bundle({"schedule.name": "inverse_time"}),
                       "cosine": Bundle({"schedule.name": "cosine"}),
                       "warmup": Bundle({"schedule.name": "cosine", "schedule.warmup": 0.1})}},
    control="optimizer=momentum,schedule=constant",
    verdict=Interaction("optimizer=momentum,schedule=cosine", "optimizer=momentum,schedule=constant",
                        "optimizer=adam,schedule=cosine", "optimizer=adam,schedule=constant"),
)
