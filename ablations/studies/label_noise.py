"""Does mixup keep a network from memorizing corrupted labels, where plain training (ERM) memorizes them?

Claim: Zhang et al. 2017 ("Understanding deep learning requires rethinking generalization") showed that
a network with enough capacity fits any labels, random ones included, so part of its training set can
be memorized rather than learned.  The mixup paper (Zhang et al. 2018, section "memorization of
corrupted labels") trains on convex combinations of example pairs and their labels and reports that
this memorizes far fewer corrupted labels and loses less test accuracy to them than ERM; the stronger
the interpolation (larger alpha), the less memorization.
Paper setting: Zhang et al. 2018: CIFAR-10 with 20/50/80% of the training labels replaced at random,
PreAct ResNet-18 (11M parameters for 50k images), 200 epochs, lr 0.1 divided by 10 at epochs 100 and
150, weight decay 1e-4, mixup alpha in {1, 2, 8, 32}.
Scaled down: 1,000 training images, a 2x512 MLP (670k parameters on Fashion-MNIST's 784 inputs, 300k
on digits' 64: enough to memorize them), batch 64, the baseline's lr 0.05 with the same step decay at 50% and 75% of
training, weight decay 1e-4, mixup alpha 8, and 0/20/40% of the training labels replaced by another
class (data.label_noise; val and test labels stay clean), 60 epochs on both presets.
Measured per run: test accuracy, and on the corrupted training examples `memorized_frac` (the share
of their wrong labels the final net reproduces) and `corrupted_true_acc` (the share it labels with
their true class).
Verdict: supported if, at 40% noise, mixup beats ERM on test accuracy and memorizes a smaller share of
the corrupted labels, and its test-accuracy advantage over ERM is larger at 40% noise than without
noise (paired t over seeds, Holm over the three).
Seeds: 5 where a preset takes the study's own: the interaction is a difference of differences, the
noisiest comparison here, and Holm over three asks p < 0.0167 of the strongest.
Run:   python run_all.py --study label_noise        # 2 trainings x 3 noise levels = 6 variants x seeds
Time:  digits about 4 min (load ~11, so pessimistic); fashion_mnist about 2.5 min of training with 2
       workers (benchmarks/preset_budget.py)
"""
from ..rules import AllOf
from ..study import Better, Bundle, Interaction, Study

TRAINING = {"erm": Bundle({"data.mix": "none"}), "mixup": Bundle({"data.mix": "mixup", "data.mix_alpha": 8.0})}


def _v(training: str, noise: str) -> str:
    return f"training={training},label_noise={noise}"


STUDY = Study(
    name="label_noise",
    question=__doc__,
    claim="ERM memorizes corrupted training labels and loses test accuracy to them; mixup memorizes fewer "
          "and keeps more test accuracy, the more so the noisier the labels.",
    mode="grid",
    seeds=5,
    base={"data.train_size": 1000, "data.batch_size": 64, "model.width": 512, "optim.weight_decay": 1e-4,
          "schedule.name": "step", "trainer.max_epochs": 60},
    axes={"training": TRAINING, "data.label_noise": [0.0, 0.2, 0.4]},
    control=_v("erm", "0"),
    verdict=AllOf((
        Better(_v("mixup", "0.4"), than=(_v("erm", "0.4"),), metric="test_acc"),
        Better(_v("mixup", "0.4"), than=(_v("erm", "0.4"),), metric="memorized_frac", higher_is_better=False),
        Interaction(_v("mixup", "0.4"), _v("erm", "0.4"), _v("mixup", "0"), _v("erm", "0"), metric="test_acc"),
    )),
)
