"""Print the results of the committed runs (weights/*.json) as Markdown tables, or write them.

    python scripts/results_table.py            # print the Omniglot and sinusoid tables
    python scripts/results_table.py --write    # rewrite docs/RESULTS.md and the README's headline
    python scripts/results_table.py --check    # exit 1 if either is out of date with the records
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metalearn_helpers import results_page  # noqa: E402
from metalearn_helpers.records import load_records, results_table  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true",
                        help="rewrite docs/RESULTS.md and the README's headline table")
    action.add_argument("--check", action="store_true",
                        help="exit 1 if docs/RESULTS.md or the README's headline is out of date")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        print(results_table(load_records(prefix="omniglot_")))
        print()
        print(results_table(load_records(prefix="sinusoid_")))
        return 0
    expected = {results_page.RESULTS: results_page.results_page(),
                results_page.README: results_page.readme_with_headline(
                    results_page.README.read_text())}
    stale = [path for path, text in expected.items()
             if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path} is out of date: run python scripts/results_table.py --write")
        return 1 if stale else 0
    for path in stale:
        path.write_text(expected[path])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
