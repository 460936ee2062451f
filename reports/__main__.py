"""python -m reports --results-dir results [--out DIR]: rebuild the report from stored results only."""
import argparse
import sys

from .build import build

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__)
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--out", default=None, help="report folder (default: <results-dir>/report)")
    args = parser.parse_args()
    try:
        print(f"report written to {build(args.results_dir, args.out)}")
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
