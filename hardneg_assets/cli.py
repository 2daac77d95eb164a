"""The installed `hardneg` command: the library's `verify` and `grade`, plus `run`.

`run` materializes the asset graph for one `family|seed` through Dagster, so it belongs
to the Dagster layer; `verify` and `grade` stay in `hardneg.cli` (plain Python). This
module imports neither Dagster nor a model at import: `hardneg run` first checks the
profile, its `--set` overrides, the partition and the models' availability, and only
then imports Dagster, so a mistake costs one line on stderr and exit code 2 in a second
or two, not a stack trace after the imports.
"""

from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """`hardneg.cli.build_parser()` (verify, grade, --version) with the `run` subcommand added."""
    from hardneg.cli import build_parser as library_parser

    parser = library_parser()
    parser.description = "Verifier-guided hard negatives and weighted DPO: verify, grade, run the pipeline (docs/SPEC.md §5)."
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # argparse has no public accessor
    run = sub.add_parser(
        "run",
        help="materialize the whole asset graph for one family|seed partition",
        description="Materialize problems → SFT → candidates → verifier → funnel → pairs → DPO → evaluation → report "
        "for one family|seed, as real runs in the Dagster instance, then print the funnel and Table 1. Only what is "
        "missing or stale runs (a changed code version or profile section, or new upstream data); see --force, --dry-run.",
    )
    run.add_argument(
        "--profile", default=None, metavar="NAME|PATH",
        help="profile name under profiles/ or a YAML file (default: $HARDNEG_PROFILE, else smoke)",
    )
    run.add_argument(
        "--partition", default=None, metavar="FAMILY|SEED",
        help="the family × seed partition, e.g. 'smollm2-135m-sft|0' (default: the profile's default_partition)",
    )
    run.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one profile key, validated like the file (value read as YAML), e.g. --set dpo.beta=0.2; repeatable",
    )
    run.add_argument(
        "--force", nargs="*", default=None, metavar="ASSET",
        help="re-materialize on purpose: every asset of the partition (no names) or the named ones; "
        "without it only what is missing or stale runs",
    )
    run.add_argument(
        "--dry-run", action="store_true",
        help="print what would run and why (missing / code changed / upstream changed) and run nothing",
    )
    run.set_defaults(func=cmd_run)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from hardneg.configuration import ConfigError
    from hardneg.profiles import preflight  # profile, overrides, partition and model availability, no Dagster

    try:
        _, family, seed = preflight(args.profile, args.partition, args.overrides)
    except ConfigError as exc:
        print(f"hardneg run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from hardneg_assets.run import UnknownAsset, run_incremental  # Dagster and the asset graph load only now

    try:
        return run_incremental(args.profile, family, seed, args.overrides, force=args.force, dry_run=args.dry_run).code
    except UnknownAsset as exc:  # known only once the graph is built
        print(f"hardneg run: {exc}", file=sys.stderr)
        return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    from hardneg.cli import main as library_main

    return library_main(argv)


if __name__ == "__main__":
    sys.exit(main())
