"""Which data augmentations help a small convnet trained on few digits?

Claim (lecture 7): augmenting the training data with label-preserving transformations (translations,
crops and scales, color jitter, cutout) is a regularizer that improves accuracy on unseen data when
training data is scarce; a transformation that does not preserve the label hurts.
Setting: a two-stage convnet (8-16 channels) on 200 digits for 30 epochs.  Digits are 8x8 and grey, so color jitter
only changes brightness and contrast, and horizontal flips change the meaning of most digits (2, 3,
4, 7 ...): flip is the negative control.
Verdict: supported if random crops (small translations) beat no augmentation on final val accuracy.
Run:   python run_all.py --study augmentation       # 8 variants x 3 seeds
Time:  1.9 min wall, 51 s CPU on 2 CPU cores shared with other jobs (load ~5; alone ~1 min)
"""
from ..study import Better, Study

STUDY = Study(
    name="augmentation",
    question=__doc__,
    claim="Label-preserving augmentation improves accuracy when training data is scarce.",
    base={"data.train_size": 200, "data.batch_size": 25, "trainer.max_epochs": 30,
          "model.network": "convnet", "model.channels": (8, 16)},
    axes={"data.augment": ["flip", "crop", "scale", "color_jitter", "cutout", "crop+cutout",
                           "scale+color_jitter"]},
    verdict=Better("augment=crop", than=("baseline",)),
)
