"""The explicit list of studies: adding one is a file here plus one line below (tests check both)."""
from lit_modules import Registry

from ..study import Study
from . import activations, batchnorm_lr, init_depth, initializers, lr_wd_search, optimizers

STUDIES: Registry[Study] = Registry("study", {s.name: s for s in [
    activations.STUDY,
    initializers.STUDY,
    batchnorm_lr.STUDY,
    optimizers.STUDY,
    lr_wd_search.STUDY,
    init_depth.STUDY,
]})
