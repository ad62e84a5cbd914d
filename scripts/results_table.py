"""Print the results of the committed runs (weights/*.json) as Markdown tables, for the README.

    python scripts/results_table.py
"""

from __future__ import annotations

from metalearn_helpers.records import load_records, results_table

if __name__ == "__main__":
    print(results_table(load_records(prefix="omniglot_")))
    print()
    print(results_table(load_records(prefix="sinusoid_")))
