"""Does the hidden nonlinearity change how fast and how well a deep MLP trains?

Claim (lecture 6): ReLU converges much faster than sigmoid and tanh; sigmoid saturates and kills
gradients. Leaky ReLU, PReLU, ELU, SELU and Maxout fix ReLU's dead units at some cost.
Paper setting: Glorot & Bengio 2010 (sigmoid's top hidden layer saturates and training stalls): 5
hidden layers of 1,000 units, plain SGD on mini-batches of 10, MNIST/CIFAR-10/Shapeset; Krizhevsky et
al. 2012 (a 4-layer CIFAR-10 convnet with ReLUs reaches 25% training error 6x sooner than with tanh).
Scaled down: fashion_mnist preset: 5 hidden layers of 256 units, plain SGD at lr 0.01 on mini-batches
of 10, 5,000 training images, 10 epochs (5,000 steps); digits preset (smoke): the 2x128 baseline MLP,
10 epochs.  Every activation gets He init with its own gain (lit_modules/layers.py): the question is
the nonlinearity, the initializer is the init studies' subject.
Verdict: supported if ReLU's area under the val-loss curve is below sigmoid's and tanh's (paired t,
Holm over the two).  Smallest effect 0.09 nats x epochs: the val-loss default, 0.01 nats, at each of
the 9 epoch intervals of the study's 10 epochs.
Run:   python run_all.py --study activations        # 10 variants (the baseline is ReLU) x seeds
Time:  digits about 1 min; fashion_mnist about 3 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
from ..study import Better, Study

EPOCHS = 10   # fixed for both presets: the smallest effect below is per epoch interval

STUDY = Study(
    name="activations",
    question=__doc__,
    claim="ReLU converges faster than sigmoid and tanh; sigmoid saturates.",
    base={"trainer.max_epochs": EPOCHS},
    axes={"model.activation": ["sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "selu", "maxout",
                               "gelu", "silu"]},
    verdict=Better("activation=relu", than=("activation=sigmoid", "activation=tanh"), metric="val_loss_auc",
                   higher_is_better=False, delta=0.01 * (EPOCHS - 1)),
)
