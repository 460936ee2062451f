"""python -m reports --results-dir results [--out DIR] [--publish]: rebuild the report from stored results only."""
import argparse
import sys

from .rebuild import rebuild

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__)
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--out", default=None, help="report folder (default: <results-dir>/report)")
    parser.add_argument("--workers", type=int, default=None, help="processes drawing figures (default: CPU cores)")
    parser.add_argument("--publish", action="store_true",
                        help="also save the W&B report to W&B (needs credentials and network)")
    parser.add_argument("--wandb-project", default="cs231n-ablations")
    parser.add_argument("--readme-table", action="store_true",
                        help="print the README's verdict table from the stored report (builds nothing)")
    parser.add_argument("--write-readme", metavar="README", help="with --readme-table: replace the generated "
                        "block of this README instead of printing")
    parser.add_argument("--block", default="verdicts", help="with --readme-table: the name of the generated "
                        "block (the README keeps one per preset: verdicts, fashion_mnist-verdicts)")
    args = parser.parse_args()
    if args.readme_table:
        from .overview import readme_table, write_readme
        try:
            table = readme_table(args.results_dir, args.block)
            write_readme(args.write_readme, table, args.block) if args.write_readme else print(table)
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        sys.exit(0)
    from .wandb_report import PublishError
    try:
        if rebuild(args.results_dir, args.out, workers=args.workers, publish=args.publish,
                   wandb_project=args.wandb_project) is None:
            sys.exit(2)   # no finished run: nothing was written
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except PublishError as e:
        print(f"report written to {args.out or args.results_dir + '/report'}, W&B report not published: {e}",
              file=sys.stderr)
        sys.exit(2)
