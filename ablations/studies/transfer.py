"""Does a network pretrained on other classes beat training from scratch when target data is scarce?

Claim (lecture 7, transfer learning): with very little data, a linear classifier on a pretrained
network's features (or fine-tuning its top) beats training from scratch; with quite a lot of data,
fine-tuning everything (the body at a 10x lower learning rate) is the better choice.
Set-up: the source is a one-hidden-layer, 512-unit ReLU MLP (the baseline recipe otherwise) trained on
digits 0-4 for 20 epochs, once, cached in results/checkpoints/; the target is digits 5-9 with 10, 25
or all ~650 training images, for every `transfer.mode`: scratch, linear (frozen body, new head),
finetune_top (with one hidden layer the top layer is the whole body, at the full rate) and
finetune_all (body at 0.1x the head's rate).  Deeper source MLPs transfer worse here: their top
features collapse onto the five source classes, and raw 8x8 pixels are already good features.
Verdict: supported if, with 10 target images, the linear classifier on the pretrained body beats
scratch on test accuracy (paired by seed).  Fine-tuning versus a linear classifier at full size is in
the table and figure, not the verdict.
ImageNet weights: on colour images add --dataset cifar10 --set model.network=tv_resnet18
--set transfer.source=imagenet_resnet18 (the weights are read from the torch hub cache, never
downloaded); without them the plan warns and uses the in-suite source instead.
Run:   python run_all.py --study transfer           # 4 modes x 3 sizes = 12 variants x 3 seeds + 1 source
Time:  38-65 s wall on 2 CPU cores shared with other jobs (load 3.4-6; pessimistic), report included
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
    control="mode=scratch,train_size=10",
    verdict=Better("mode=linear,train_size=10", than=("mode=scratch,train_size=10",), metric="test_acc"),
)
