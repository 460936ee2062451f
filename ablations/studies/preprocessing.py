"""Does zero-centering (and normalizing or whitening) the inputs speed up training?

Claim (lecture 6): inputs that are all positive make every weight gradient of a unit share one sign
(zig-zag updates), so zero-centering helps; scaling to unit variance and whitening help less for images
(per-pixel scales are already similar), and PCA/ZCA whitening is rarely used with convnets.
Setting: the baseline MLP on digits (pixels in [0, 1]) with plain SGD for 10 epochs, so speed shows.
Verdict: supported if standardized inputs (zero mean, unit variance per pixel, the usual recipe) have
a smaller area under the val-loss curve than raw pixels (paired CIs).
Run:   python run_all.py --study preprocessing      # 6 variants x 3 seeds
Time:  2.3 min wall, 40 s CPU on 2 CPU cores shared with other jobs (load ~7; alone it is ~1 min)
"""
from ..study import Better, Study

STUDY = Study(
    name="preprocessing",
    question=__doc__,
    claim="Zero-centered, normalized inputs train faster than raw positive pixels.",
    base={"optim.name": "sgd", "optim.lr": 0.05, "trainer.max_epochs": 10},
    axes={"data.preprocess": ["none", "center_image", "center_channel", "standardize", "pca_whiten",
                              "zca_whiten"]},
    verdict=Better("preprocess=standardize", than=("preprocess=none",), metric="val_loss_auc",
                   higher_is_better=False),
)
