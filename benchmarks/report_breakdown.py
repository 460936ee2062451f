"""Where a report's drawing time goes: every figure drawn in this one process, one after the other,
with the seconds of each phase (building the figure, its tight bounding box, the PNG, the SVG) summed
per figure family and in all.  It explains benchmarks/report_speed.py's number; it does not replace it.

    python benchmarks/report_speed.py --keep /tmp/rs        # 1,000 synthetic runs, kept
    python benchmarks/report_breakdown.py /tmp/rs           # then this, on them (or on a real results folder)

The phases are what reports/build.py's _save does for each figure, timed apart.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from reports.build import FIGURES, _manifest  # noqa: E402  (every figure module registered)
from reports.plotting import StudyData  # noqa: E402
from reports.search import edge_warnings  # noqa: E402
from reports.tables import runs_table  # noqa: E402
from reports.verdicts import with_convergence  # noqa: E402

PHASES = ("build", "tight box", "png", "svg")


def breakdown(results: Path, out: Path) -> pd.DataFrame:
    """One row per drawn figure: study, figure, and the seconds of each phase."""
    runs, history = with_convergence(results, runs_table(results))
    rows = []
    for study in dict.fromkeys(runs.study):
        data = StudyData(study, runs, history, _manifest(results, study), results)
        data.manifest["warnings"] = edge_warnings(data.members, data.manifest.get("tuned", []))
        for name in FIGURES.names():
            t = [time.perf_counter()]
            fig = FIGURES.get(name)(data)
            t.append(time.perf_counter())
            if fig is None:
                continue
            box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(0.1)
            t.append(time.perf_counter())
            fig.savefig(out / f"{study}_{name}.png", dpi=110, bbox_inches=box, pil_kwargs={"compress_level": 1})
            t.append(time.perf_counter())
            with plt.rc_context({"svg.fonttype": "none"}):
                fig.savefig(out / f"{study}_{name}.svg", bbox_inches=box)
            t.append(time.perf_counter())
            plt.close(fig)
            rows.append({"study": study, "figure": name, **{p: b - a for p, a, b in zip(PHASES, t, t[1:])}})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", type=Path, help="a results folder (report_speed.py --keep DIR writes one)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        table = breakdown(args.results, Path(tmp))
        wall = time.perf_counter() - t0
    per = table.groupby("figure")[list(PHASES)].sum()
    per.insert(0, "figures", table.groupby("figure").size())
    per["total"] = per[list(PHASES)].sum(axis=1)
    per = per.sort_values("total", ascending=False)
    total = per[list(PHASES) + ["total"]].sum()
    with pd.option_context("display.width", 120, "display.float_format", "{:.2f}".format):
        print(per.to_string())
    print(f"\n{len(table)} figures in one process: " + ", ".join(f"{p} {total[p]:.1f} s" for p in PHASES)
          + f"; drawing {total['total']:.1f} s of {wall:.1f} s (the rest: reading and tables)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
