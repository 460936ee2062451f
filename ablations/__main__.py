"""python -m ablations --set model.activation=tanh --set optim.name=adam --results-dir results"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lit_modules import ConfigError

from .preflight import check_runs
from .storage import check_results_dir
from .runner import resolve, train


def parse_sets(items: list[str]) -> dict[str, str]:
    """["optim.lr=0.1", ...] -> {"optim.lr": "0.1"}; values are typed by the config fields they set."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value
    return out


def _ddp_logger(cfg, results_dir: str):
    """Inside a DDP launch from the grid, rank 0 logs to W&B with the settings the grid passed down."""
    from .executors import WANDB_ENV
    spec = os.environ.get(WANDB_ENV)
    if not spec or int(os.environ.get("RANK", "0")) != 0:
        return None
    from .runner import run_id
    from .tracking import Tracking, make_logger
    spec = json.loads(spec)
    return make_logger(Tracking(**spec["tracking"]), Path(results_dir), run_id(cfg), cfg, group=spec["group"],
                       name=spec["name"], tags=spec["tags"], studies=spec["studies"])


def _read_config(path: str) -> dict:
    try:
        config = json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot read it ({e.strerror or e})") from None
    except ValueError as e:   # not UTF-8, not JSON
        raise ConfigError(f"--config {path}: not a JSON config ({e})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"--config {path}: expected a JSON object of config keys, got {type(config).__name__}")
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ablations", description="Train and test one run.")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set optim.lr=0.1 (repeatable)")
    parser.add_argument("--config", help="start from a config.json written by an earlier run")
    parser.add_argument("--results-dir", default="results", help="where runs/<run_id>/ is written")
    args = parser.parse_args(argv)
    try:
        base = resolve(_read_config(args.config)) if args.config else None
        cfg = resolve(parse_sets(args.sets), base)
        if int(os.environ.get("RANK", "0")) == 0:
            check_results_dir(args.results_dir)
        check_runs([cfg])
        logger, summary = _ddp_logger(cfg, args.results_dir), None
        try:
            summary = train(cfg, args.results_dir, loggers=[logger] if logger else [])
        finally:
            from .tracking import finish
            finish(logger, summary)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one summary
        print(json.dumps({k: v for k, v in summary.items() if k != "traceback"}, indent=2, default=str))
    if summary["status"] == "failed":
        print(summary.get("traceback", ""), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
