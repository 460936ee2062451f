"""Babysitting the learning process: the checks to run before a long training run.

Claim (lecture 6): (1) in a learning-rate range test the loss barely moves at tiny rates, falls at
good ones and explodes at huge ones; (2) a network that works can overfit a tiny batch (loss -> 0,
train accuracy 1) with regularization off; (3) the train-val gap says what to change: a big gap ->
more regularization or data, a small gap at low accuracy -> more capacity.
Paper setting: the lecture's recipe (overfit about 20 examples with regularization off before training
for real; read the train-val gap); Smith 2017 (the lr range test: one short run, the rate raised
every step, read where the loss starts to fall and where it blows up).
Scaled down: the baseline 2x128 ReLU MLP; Lightning's lr_find (100 steps, rates 1e-8..1); overfit one
mini-batch for 40 steps; 100 training images; a 1x2 net.  fashion_mnist preset: mini-batches of 20
(the lecture's 20 examples for the overfit check), 10,000 training images, 10 epochs; digits (smoke):
batch 128, 20 epochs.
Verdict: supported if, on every seed, the lr_find curve is flat over its first decade and ends above
2x its minimum, the overfit run reaches train loss < 0.05, the 100-example run is advised to
regularize and the 2-unit net to grow.
Run:   python run_all.py --study babysitting        # 5 variants x seeds
Time:  digits about 75 s; fashion_mnist about 0.5 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
from ..procedures import OVERFITTING, UNDERFITTING
from ..rules import AllOf, Holds, LrRange
from ..study import Bundle, Study

STUDY = Study(
    name="babysitting",
    question=__doc__,
    claim="The lr range test is flat then explodes; a working net overfits a tiny batch; the train-val "
          "gap says whether to regularize or to add capacity.",
    axes={"check": {
        "lr_find": Bundle({"trainer.procedure": "lr_find"}),
        "overfit": Bundle({"trainer.procedure": "overfit", "trainer.max_epochs": 40}),
        "small_data": Bundle({"data.train_size": 100}),         # fit: train 1.0, val ~0.87
        "tiny_net": Bundle({"model.width": 2, "model.depth": 1}),  # fit: train and val ~0.6
    }},
    verdict=AllOf((
        LrRange("check=lr_find", flat=0.1, blowup=2.0),
        Holds("check=overfit", "train_loss", "<", 0.05),
        Holds("check=small_data", "advice", "==", OVERFITTING),
        Holds("check=tiny_net", "advice", "==", UNDERFITTING),
    )),
)
