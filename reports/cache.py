"""Figures cached in the report folder by a hash of what they are drawn from, so a rebuild after one
study changed redraws only that study (drawing is most of a report's time).

A study's key hashes its runs rows (every column they have: config, summary, convergence), its history
rows, its manifest (with the report's warnings), the size and modification time of every other file its
runs hold (diagnostics, activation histograms, predictions, lr_find and landscape paths), and the figure
code: the source of the reports package and the versions of the plotting libraries.  The cache file
names each study's key and images; an image missing on disk is a miss.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ablations.results import run_dir, write_json

CACHE = ".figure-cache.json"
# Modules of the reports package that draw nothing: editing them leaves every figure valid.
NOT_DRAWING = {"__init__.py", "__main__.py", "build.py", "cache.py", "conditions.py", "display.py", "overview.py",
               "page.py", "rebuild.py", "wandb_report.py"}


@lru_cache(maxsize=4)
def figure_code(*functions) -> str:
    """A hash of the figure code: the reports modules that draw, their data contract, library versions,
    and the source of `functions` from elsewhere (build.py's saving of a figure)."""
    import inspect

    import matplotlib
    import numpy
    import seaborn
    here = Path(__file__).parent
    sources = sorted(p for p in here.glob("*.py") if p.name not in NOT_DRAWING)
    sources.append(here.parent / "ablations" / "results.py")
    h = hashlib.sha256()
    for path in sources:
        h.update(path.name.encode() + path.read_bytes())
    h.update(f"{matplotlib.__version__} {seaborn.__version__} {pd.__version__} {numpy.__version__}".encode())
    for function in functions:
        try:
            h.update(inspect.getsource(function).encode())
        except (OSError, TypeError):    # no source at hand (a frozen install): its bytecode then
            h.update(function.__code__.co_code)
    return h.hexdigest()


def _files(results: Path, run_ids) -> bytes:
    """(name, size, mtime) of every file of the runs other than the ones the tables already hold."""
    out = []
    for rid in sorted(set(run_ids)):
        try:
            with os.scandir(run_dir(results, rid)) as entries:
                for e in sorted(entries, key=lambda e: e.name):
                    if e.is_file():
                        st = e.stat()
                        out.append(f"{rid}/{e.name} {st.st_size} {st.st_mtime_ns}")
        except OSError:
            out.append(f"{rid} missing")
    return "\n".join(out).encode()


def study_key(data, code: str) -> str:
    """The hash of a reports.figures.StudyData's inputs and the figure `code` (figure_code())."""
    members = data.members.dropna(axis=1, how="all")   # other studies' empty columns do not count
    history = data.history[data.history.run_id.isin(set(members.run_id))]
    h = hashlib.sha256(code.encode())
    h.update(members.to_csv(index=False).encode())
    h.update(pd.util.hash_pandas_object(history, index=False).to_numpy().tobytes())
    h.update(json.dumps(data.manifest, sort_keys=True, default=str).encode())
    if data.results_dir is not None:
        h.update(_files(Path(data.results_dir), members.run_id))
    return h.hexdigest()


def load(out: Path) -> dict[str, dict]:
    try:
        studies = json.loads((out / CACHE).read_text()).get("studies", {})
        return studies if isinstance(studies, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def hit(out: Path, entry: dict | None, key: str) -> list[str] | None:
    """The cached images of a study when its key matches and every file is still there."""
    if not entry or entry.get("key") != key or not isinstance(entry.get("images"), list):
        return None
    images = entry["images"]
    ok = all((out / img).exists() and (out / (img[:-4] + ".svg")).exists() for img in images)
    return images if ok else None


def save(out: Path, old: dict[str, dict], current: dict[str, dict]) -> None:
    """Write the cache of this build's studies; delete the images of a redrawn study that its new figures
    no longer include (a grid that lost its second axis has no heatmap any more)."""
    for study, entry in current.items():
        gone = set((old.get(study) or {}).get("images", [])) - set(entry["images"])
        for img in gone:
            for path in (out / img, out / (img[:-4] + ".svg")):
                path.unlink(missing_ok=True)
    write_json(out / CACHE, {"studies": current})
