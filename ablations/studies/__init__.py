"""The explicit list of studies: adding one is a file here plus one line below (tests check both)."""
from lit_modules import Registry

from ..study import Study
from . import (activations, augmentation, babysitting, batchnorm, batchnorm_lr, ensembles, init_depth, initializers,
               label_noise, landscapes, optimizers, preprocessing, regularization, schedules, search, transfer)

STUDIES: Registry[Study] = Registry("study", {s.name: s for s in [
    activations.STUDY,
    initializers.STUDY,
    batchnorm_lr.STUDY,
    optimizers.STUDY,
    init_depth.STUDY,
    search.STUDY,
    ensembles.STUDY,
    babysitting.STUDY,
    landscapes.STUDY,
    transfer.STUDY,
    regularization.STUDY,
    preprocessing.STUDY,
    augmentation.STUDY,
    batchnorm.STUDY,
    schedules.STUDY,
    label_noise.STUDY,
]})
