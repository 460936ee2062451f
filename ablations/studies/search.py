"""Grid or random search for the learning rate and weight decay, coarse to fine?

Claim (lecture 6; Bergstra & Bengio 2012): with the same budget, random search finds better values
than a grid, because only some hyperparameters matter (here the learning rate) and a grid tries few
distinct values of each; sample scales log-uniformly; search coarse to fine, short runs first.
Paper setting: Bergstra & Bengio 2012: one-hidden-layer nets on the MNIST variants and other image
sets of Larochelle et al. 2007, up to 7 hyperparameters, random trials against grids of 100+ trials.
Scaled down: 2 hyperparameters (lr 1e-4..1, weight decay 1e-6..1e-2, both log-scaled) of the baseline
2x128 ReLU MLP; fashion_mnist preset: 10,000 training images, stage 2 at the preset's 10 epochs;
digits (smoke): all of them, stage 2 at 20 epochs.
Stage 1 (`search`): 16 trials as a 4 x 4 log grid and 16 log-uniform random draws over the same box,
5 epochs each, with the lecture's search-time cut (trainer.early_stop_factor=3): a trial whose epoch-mean
training loss exceeds 3x its first mini-batch's loss stops as `stopped_early`, scored by the val accuracy
it had reached; a non-finite loss ends a trial as `diverged`.  Stage 2 (`search_fine`):
8 random draws of full-length runs (no early stop) in a narrow box around stage 1's best (lr within a factor of 3,
weight decay within a factor of 10).
The report warns when a best value sits at the edge of the range tried.
Verdict: per seed, the configuration each search's val accuracy picks is scored on the test set (so
the verdict does not report on the data that chose it); supported if random's pick beats the grid's
(paired t-test over seeds), no practical difference if the interval lies within half a point.
The control for the stats table is the grid cell nearest the baseline recipe (lr 0.046, wd 4.6e-4).
Run:   python run_all.py --study search        # 32 + 8 trials x seeds (stage 1, then stage 2)
Time:  digits about 2.5 min; fashion_mnist about 2 min of training with 2 workers
       (benchmarks/preset_budget.py)
"""
import pandas as pd

from ..study import BestOf, LogUniform, Study

TUNED = ("optim.lr", "optim.weight_decay")


def fine_stage(coarse: pd.DataFrame) -> Study:
    """Stage 2: random draws around the best stage-1 configuration (mean final val accuracy over seeds;
    diverged runs count as worst)."""
    score = coarse.assign(score=coarse.final_val_acc.fillna(-1.0)).groupby("variant", sort=False)
    best = coarse.loc[coarse.variant == score.score.mean().idxmax()].iloc[0]
    lr, wd = float(best["optim.lr"]), float(best["optim.weight_decay"])
    return Study(
        name="search_fine",
        question=f"Stage 2 of `search`: full-length runs, randomly sampled around stage 1's best "
                 f"(lr {lr:.3g}, weight decay {wd:.3g}).",
        claim="Coarse to fine: a narrow second search around the coarse best refines it.",
        mode="random",
        samples=8,
        axes={"optim.lr": LogUniform(lr / 3, lr * 3), "optim.weight_decay": LogUniform(wd / 10, wd * 10)},
        tuned=TUNED,
    )


STUDY = Study(
    name="search",
    question=__doc__,
    claim="Random search beats a grid with the same budget; search coarse to fine on log scales.",
    mode="grid_vs_random",
    samples=16,
    seeds=3,
    base={"trainer.max_epochs": 5, "trainer.early_stop_factor": 3.0},
    axes={"optim.lr": LogUniform(1e-4, 1.0), "optim.weight_decay": LogUniform(1e-6, 1e-2)},
    tuned=TUNED,
    control="grid:lr=0.0464,weight_decay=0.000464",
    verdict=BestOf("search", group="random", than="grid"),
    then=fine_stage,
)
