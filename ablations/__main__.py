"""python -m ablations --set model.activation=tanh --set optim.name=adam --results-dir results"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lit_modules import ConfigError

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ablations", description="Train and test one run.")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set optim.lr=0.1 (repeatable)")
    parser.add_argument("--config", help="start from a config.json written by an earlier run")
    parser.add_argument("--results-dir", default="results", help="where runs/<run_id>/ is written")
    args = parser.parse_args(argv)
    try:
        base = resolve(json.loads(Path(args.config).read_text())) if args.config else None
        cfg = resolve(parse_sets(args.sets), base)
        summary = train(cfg, args.results_dir)
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
