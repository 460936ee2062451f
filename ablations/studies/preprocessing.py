"""Does zero-centering (and normalizing or whitening) the inputs speed up training?

Claim (lecture 6): inputs that are all positive make every weight gradient of a unit share one sign
(zig-zag updates), so zero-centering helps; scaling to unit variance and whitening help less for images
(per-pixel scales are already similar), and PCA/ZCA whitening is rarely used with convnets.
Paper setting: LeCun et al. 1998 ("Efficient BackProp": inputs shifted to zero mean, scaled to equal
variance and decorrelated speed up plain gradient descent; the all-positive-inputs argument).
Scaled down: the baseline 2x128 ReLU MLP on raw pixels in [0, 1] and each preprocessing, plain SGD at
lr 0.05 (momentum would hide the zig-zag), 10 epochs on both presets (fashion_mnist: 10,000 training
images), so speed shows.
Verdict: supported if standardized inputs (zero mean, unit variance per pixel, the usual recipe) have
a smaller area under the val-loss curve than raw pixels (paired t).  Smallest effect 0.09 nats x
epochs: the val-loss default, 0.01 nats, at each of the 9 epoch intervals of the study's 10 epochs.
Run:   python run_all.py --study preprocessing      # 6 variants x seeds
Time:  digits about 1-2 min; fashion_mnist about 0.5 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
from ..study import Better, Study

EPOCHS = 10   # fixed for both presets: the smallest effect below is per epoch interval

STUDY = Study(
    name="preprocessing",
    question=__doc__,
    claim="Zero-centered, normalized inputs train faster than raw positive pixels.",
    base={"optim.name": "sgd", "optim.lr": 0.05, "trainer.max_epochs": EPOCHS},
    axes={"data.preprocess": ["none", "center_image", "center_channel", "standardize", "pca_whiten",
                              "zca_whiten"]},
    verdict=Better("preprocess=standardize", than=("preprocess=none",), metric="val_loss_auc",
                   higher_is_better=False, delta=0.01 * (EPOCHS - 1)),
)
