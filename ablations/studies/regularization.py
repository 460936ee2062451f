"""Which regularizers close the gap between training and validation accuracy on a set small enough to
overfit?

Claim (lecture 7): regularization (L2, L1, dropout, DropConnect, batch norm, data augmentation such as
cutout, mixup and cutmix, stochastic depth, fractional max pooling) trades some fit of the training
set for accuracy on unseen data: it shrinks the train-val gap.
Paper setting: Srivastava et al. 2014 (dropout, p = 0.5 on hidden units: MNIST MLPs of 2-4 hidden
layers of 1,024-8,192 units; with 784-1024-1024-2048 nets trained on MNIST subsets of 100 to 50,000
images, dropout helps from about 500 images up); Wan et al. 2013 (DropConnect, MNIST MLPs of 2 hidden
layers of 800 units and CIFAR/SVHN convnets); Huang et al. 2016 (stochastic depth: 110-layer ResNet on
CIFAR, last block's drop rate 0.5, 500 epochs); Graham 2014 (fractional max pooling, ratio about
sqrt(2), CIFAR convnets); DeVries & Taylor 2017 (cutout, ResNet-18 on CIFAR-10, 200 epochs); Zhang et
al. 2018 (mixup, alpha 1, PreAct ResNet-18, 200 epochs); Yun et al. 2019 (CutMix, alpha 1).
Scaled down: a 2-hidden-layer ReLU MLP without weight decay that memorizes its training set (clean
training accuracy 1), batch 25, SGD+momentum at lr 0.01 (the baseline's 0.05 at batch 128 scaled to
batch 25 by Goyal et al. 2017's linear rule; at 0.05 the dropout MLP's loss turns non-finite on
Fashion-MNIST): fashion_mnist preset: 512 units, 1,000 training images (100 a class), 30 epochs (1,200
steps, so the noise-injecting regularizers converge too); digits (smoke): 256 units, 150 images, 40
epochs.  Each variant
switches one regularizer on, dropout at the paper's 0.5.  Stochastic depth and fractional pooling
need a residual network: `resnet` is a small ResNet reference (8-16 channels, max-pool between stages,
its own lr 0.02) and the two variants after it change only that; compare them with `resnet`, not
with the MLP baseline.  The gap is the clean training accuracy (eval mode, no augmentation or mixing)
minus the final val accuracy (`gap` in runs.csv and the stats table).
Verdict: supported if L2, dropout and mixup each leave a smaller gap than the unregularized
baseline (paired t per regularizer, Holm over the three).
Run:   python run_all.py --study regularization     # 12 variants x seeds
Time:  digits about 3 min; fashion_mnist about 4.5 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
from ..study import AllOf, Better, Bundle, Study

RESNET = {"model.network": "resnet", "model.channels": (8, 16), "model.pool": "max", "optim.lr": 0.02}

REGULARIZERS = {
    "L2": Bundle({"optim.weight_decay": 1e-2}),
    "L1": Bundle({"optim.l1": 1e-4}),
    "dropout": Bundle({"model.dropout": 0.5}),
    "drop_connect": Bundle({"model.drop_connect": 0.2}),
    "batch_norm": Bundle({"model.norm": "batch"}),
    "cutout": Bundle({"data.augment": "cutout"}),
    "mixup": Bundle({"data.mix": "mixup"}),
    "cutmix": Bundle({"data.mix": "cutmix"}),
    "resnet": Bundle(RESNET),
    "resnet+stochastic_depth": Bundle({**RESNET, "model.stochastic_depth": 0.3}),
    "resnet+fractional_pool": Bundle({**RESNET, "model.pool": "fractional"}),
}
CHECKED = ("L2", "dropout", "mixup")   # the regularizers the verdict tests against the MLP baseline

STUDY = Study(
    name="regularization",
    question=__doc__,
    claim="Regularization shrinks the train-val gap of a network that overfits a small training set.",
    base={"data.train_size": 150, "data.batch_size": 25, "trainer.max_epochs": 40, "model.width": 256,
          "optim.weight_decay": 0.0, "optim.lr": 0.01},
    axes={"regularizer": REGULARIZERS},
    # Each regularizer against the baseline: `gap` is lower-is-better, so a regularizer that shrinks the
    # gap "beats" the baseline and a positive effect favours the claim.  One family (Holm over three).
    verdict=AllOf(tuple(Better(f"regularizer={r}", than=("baseline",), metric="gap") for r in CHECKED)),
)
