"""Does a network pretrained on other classes beat training from scratch when target data is scarce?

Claim (lecture 7, transfer learning): with very little data, a linear classifier on a pretrained
network's features (or fine-tuning its top) beats training from scratch; with quite a lot of data,
fine-tuning everything (the body at a 10x lower learning rate) is the better choice.
Set-up: the source is the baseline recipe (a 512-unit ReLU MLP) trained on digits 0-4, once, cached in
results/checkpoints/; the target is digits 5-9 with 10, 25 or all ~650 training images, for every
mode of `transfer.mode` (scratch, linear, finetune_top, finetune_all).
Verdict: supported if, with 10 target images, the linear classifier on the pretrained body beats
scratch on test accuracy (paired by seed, 95% bootstrap interval above zero).  Fine-tuning versus a
linear classifier at full size is in the table, not the verdict: on digits the two are within noise.
Measured (3 seeds): with 10 images, test acc linear 0.741-0.753 vs scratch 0.621-0.713; with all
images every mode reaches 0.95-0.98.  ImageNet weights: on colour images (cifar10) add
--set model.network=tv_resnet18 --set transfer.source=imagenet_resnet18; without torchvision's weights
in the torch hub cache the plan warns and falls back to the in-suite source.
Run:   python run_all.py --study transfer           # 4 modes x 3 sizes = 12 variants x 3 seeds
Time:  about 45 s on 2 shared CPU cores (digits; pessimistic: other jobs shared the CPU)
"""
from ..study import Better, Study

STUDY = Study(
    name="transfer",
    question=__doc__,
    claim="With little target data a pretrained body with a new linear classifier beats training from "
          "scratch; with more data fine-tuning everything catches up or wins.",
    mode="grid",
    base={"model.depth": 1, "model.width": 512, "data.classes": (5, 6, 7, 8, 9),
          "transfer.source_classes": (0, 1, 2, 3, 4)},
    axes={"transfer.mode": ["scratch", "linear", "finetune_top", "finetune_all"],
          "data.train_size": {"10": 10, "25": 25, "full": None}},
    verdict=Better("mode=linear,train_size=10", than=("mode=scratch,train_size=10",), metric="test_acc"),
)
