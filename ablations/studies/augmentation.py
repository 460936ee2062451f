"""Which data augmentations help a small convnet trained on few images?

Claim (lecture 7): augmenting the training data with label-preserving transformations (translations,
crops and scales, flips, color jitter, cutout) is a regularizer that improves accuracy on unseen data
when training data is scarce; a transformation that does not preserve the label hurts.
Paper setting: Krizhevsky et al. 2012 (ImageNet: random 224x224 crops of the 256x256 images and their
horizontal mirrors, plus PCA color jitter; without them the net overfits substantially); DeVries &
Taylor 2017 (cutout: a zeroed square, CIFAR-10 ResNet-18, 200 epochs).
Scaled down: a two-stage convnet on a training set small enough to overfit, batch 25, 30 epochs:
fashion_mnist preset: 16-32 channels, 1,000 training images (100 a class, 1,200 steps), lr 0.01 (the
baseline's 0.05 at batch 128 scaled to batch 25 by Goyal et al. 2017's linear rule); digits (smoke):
8-16 channels, 200 images, lr 0.05.  `crop` pads by 1/8 of the side and crops back (shifts of up
to 3 of 28 pixels, 1 of 8), `scale` is a random resized crop of 35-100% of the area.  Horizontal
flips preserve clothing labels, so on Fashion-MNIST flip and flip+crop (Krizhevsky's recipe) are
augmentations like the others; on the 8x8 digits they change the meaning of most digits (2, 3, 4, 7
...) and are the negative control.  The images are grey, so color jitter only changes brightness and
contrast.
Verdict: supported if random crops (small translations) beat no augmentation on final val accuracy.
Run:   python run_all.py --study augmentation       # 9 variants x seeds
Time:  digits about 2 min; fashion_mnist about 5.5 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
from ..study import Better, Study

STUDY = Study(
    name="augmentation",
    question=__doc__,
    claim="Label-preserving augmentation improves accuracy when training data is scarce.",
    base={"data.train_size": 200, "data.batch_size": 25, "trainer.max_epochs": 30,
          "model.network": "convnet", "model.channels": (8, 16)},
    axes={"data.augment": ["flip", "crop", "flip+crop", "scale", "color_jitter", "cutout", "crop+cutout",
                           "scale+color_jitter"]},
    verdict=Better("augment=crop", than=("baseline",)),
)
