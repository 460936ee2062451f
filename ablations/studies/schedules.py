"""Does decaying the learning rate help, and does it help SGD+momentum more than Adam?

Claim (lecture 7): SGD+momentum needs its learning rate decayed (step, exponential, 1/t, cosine) to
settle into a minimum; Adam adapts its steps and gains less from a schedule; warmup helps at the start.
Setting: the baseline MLP on digits for 20 epochs, grid of optimizer (each at its usual rate) x
schedule; "warmup" is cosine after a linear warmup over the first 10% of training.
Verdict: supported if cosine decay gains more final val accuracy over a constant rate for SGD+momentum
than it gains for Adam (per-seed difference of differences, paired CI above zero).
Run:   python run_all.py --study schedules          # 2 optimizers x 6 schedules = 12 variants x 3 seeds
Time:  2.9 min wall, 83 s CPU on 2 CPU cores shared with other jobs (load ~6; alone ~1 min)
"""
from ..study import Bundle, Interaction, Study

STUDY = Study(
    name="schedules",
    question=__doc__,
    claim="Learning-rate decay helps SGD+momentum, more than it helps Adam.",
    mode="grid",
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
