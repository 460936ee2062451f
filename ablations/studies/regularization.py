"""Which regularizers close the gap between training and validation accuracy on a set small enough to
overfit?

Claim (lecture 7): regularization (L2, L1, dropout, DropConnect, batch norm, data augmentation such as
cutout, mixup and cutmix, stochastic depth, fractional max pooling) trades some fit of the training
set for accuracy on unseen data: it shrinks the train-val gap.
Setting: the baseline MLP (width 256, no weight decay) on 150 digits for 40 epochs overfits (clean
training accuracy 100%); each variant switches one regularizer on.  Stochastic depth and fractional
pooling need a residual network: `resnet` is a small ResNet reference (8-16 channels, max-pool
between stages) and the two variants after it change only that; compare them with `resnet`, not with
the MLP baseline.  The gap is the clean training accuracy (eval mode, no augmentation or mixing)
minus the final val accuracy (`gap` in runs.csv and the stats table).
Verdict: supported if the unregularized baseline's gap is larger than L2's, dropout's and mixup's
(paired CIs over seeds).
Run:   python run_all.py --study regularization     # 12 variants x 3 seeds
Time:  3.2 min wall, 62 s CPU on 2 CPU cores shared with other jobs (load ~7; alone ~1.5 min)
"""
from ..study import Better, Bundle, Study

RESNET = {"model.network": "resnet", "model.channels": (8, 16), "model.pool": "max", "optim.lr": 0.02}

REGULARIZERS = {
    "L2": Bundle({"optim.weight_decay": 1e-2}),
    "L1": Bundle({"optim.l1": 1e-4}),
    "dropout": Bundle({"model.dropout": 0.3}),
    "drop_connect": Bundle({"model.drop_connect": 0.2}),
    "batch_norm": Bundle({"model.norm": "batch"}),
    "cutout": Bundle({"data.augment": "cutout"}),
    "mixup": Bundle({"data.mix": "mixup"}),
    "cutmix": Bundle({"data.mix": "cutmix"}),
    "resnet": Bundle(RESNET),
    "resnet+stochastic_depth": Bundle({**RESNET, "model.stochastic_depth": 0.3}),
    "resnet+fractional_pool": Bundle({**RESNET, "model.pool": "fractional"}),
}

STUDY = Study(
    name="regularization",
    question=__doc__,
    claim="Regularization shrinks the train-val gap of a network that overfits a small training set.",
    base={"data.train_size": 150, "data.batch_size": 25, "trainer.max_epochs": 40, "model.width": 256,
          "optim.weight_decay": 0.0},
    axes={"regularizer": REGULARIZERS},
    verdict=Better("baseline", than=("regularizer=L2", "regularizer=dropout", "regularizer=mixup"), metric="gap"),
)
