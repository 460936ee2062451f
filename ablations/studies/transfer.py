"""Does a network pretrained on other classes beat training from scratch when target data is scarce?

Claim (lecture 7, transfer learning): with very little data, a linear classifier on a pretrained
network's features (or fine-tuning its top) beats training from scratch; with quite a lot of data,
fine-tuning everything (the body at a 10x lower learning rate) is the better choice.
Paper setting: Yosinski et al. 2014: ImageNet split into two halves of 500 classes, an 8-layer
AlexNet-style net trained on one half, its first n layers copied to a net for the other half, frozen
or fine-tuned, against training from scratch (fine-tuned transfer wins even with the full ~645k
target images); the lecture's table (little data: a linear classifier on top; a lot: fine-tune more).
Scaled down: the source is a one-hidden-layer, 512-unit ReLU MLP (the baseline recipe otherwise)
trained on classes 0-4, once, cached in results/checkpoints/; the target is classes 5-9 with 10, 25
or all training images (fashion_mnist: ~27,000 sandals, shirts, sneakers, bags and ankle boots, the
source trained on T-shirts, trousers, pullovers, dresses and coats for 10 epochs; digits: ~650, the
source 20 epochs), for every `transfer.mode`: scratch, linear (frozen body, new head), finetune_top
(with one hidden layer the top layer is the whole body, at the full rate) and finetune_all (body at
0.1x the head's rate).  The 10- and 25-image sets are one mini-batch each, so they train for 50 epochs
(50 steps; at the preset's epochs they would take 10-20 steps in all); the full set for the preset's
epochs (fashion_mnist 10, digits 20).  Deeper source MLPs transfer worse on digits: their top features
collapse onto the five source classes, and raw 8x8 pixels are already good features.
Verdict: supported if, with 10 target images, the linear classifier on the pretrained body beats
scratch on test accuracy (paired by seed).  Fine-tuning versus a linear classifier at full size is in
the table and figure, not the verdict.
ImageNet weights: on colour images add --dataset cifar10 --set model.network=tv_resnet18
--set transfer.source=imagenet_resnet18 (the weights are read from the torch hub cache, never
downloaded); without them the plan warns and uses the in-suite source instead.
Run:   python run_all.py --study transfer           # 4 modes x 3 sizes = 12 variants x seeds + 1 source
Time:  digits about 1 min; fashion_mnist about 2 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
from ..study import Better, Bundle, Study

SMALL_EPOCHS = 50

STUDY = Study(
    name="transfer",
    question=__doc__,
    claim="With little target data a pretrained body with a new linear classifier beats training from "
          "scratch; with more data fine-tuning everything catches up or wins.",
    mode="grid",
    base={"model.depth": 1, "model.width": 512, "data.classes": (5, 6, 7, 8, 9),
          "transfer.source_classes": (0, 1, 2, 3, 4)},
    axes={"transfer.mode": ["scratch", "linear", "finetune_top", "finetune_all"],
          # One mini-batch an epoch for the small sets: 50 epochs give them 50 steps.  (Not smaller batches:
          # the source model takes the target's recipe, batch size included, and must be one model.)
          "data.train_size": {"10": Bundle({"data.train_size": 10, "trainer.max_epochs": SMALL_EPOCHS}),
                              "25": Bundle({"data.train_size": 25, "trainer.max_epochs": SMALL_EPOCHS}),
                              "full": Bundle({"data.train_size": None})}},
    control="mode=scratch,train_size=10",
    verdict=Better("mode=linear,train_size=10", than=("mode=scratch,train_size=10",), metric="test_acc"),
)
