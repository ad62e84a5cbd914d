"""Score random, UCB1 (plain and tuned), Thompson sampling, the Gittins index (and, up to 20 pulls,
the Bayes-optimal strategy) on RL²'s test bandits and record them in
``weights/bandit_baselines.json``.

The test bandits are the ones ``scripts/train_rl2.py`` scores RL² on (``BernoulliBandits.test_set``,
the same arm probabilities and the same reward uniforms), so the numbers sit next to RL²'s in
notebook 09 and in Duan et al. 2016 (arXiv 1611.02779), Table 1. Takes a few seconds; the
Gittins index's table grows as the pulls cubed (about 1 s for 100 pulls, 12 s for 200).

    python scripts/bandit_baselines.py                 # k = 5 arms, n = 10 and 100 pulls
    python scripts/bandit_baselines.py --n-pulls 10 100 500 --k-arms 10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k-arms", type=int, default=5)
    parser.add_argument("--n-pulls", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--test-tasks", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the strategies' own draws")
    args = parser.parse_args(argv)
    if args.test_tasks < 1000:
        parser.error(f"--test-tasks must be at least 1,000, got {args.test_tasks}.")
    from metalearn_helpers import bandits, papers, records

    settings = []
    for n_pulls in args.n_pulls:
        try:
            test = bandits.BernoulliBandits(args.k_arms, n_pulls).test_set(args.test_tasks)
        except (TypeError, ValueError) as error:
            parser.error(str(error))
        exploration = bandits.tune_ucb1(args.k_arms, n_pulls)
        scores = bandits.evaluate_baselines(test, seed=args.seed, ucb1_exploration=exploration)
        paper = papers.RL2_BANDIT_RESULTS.get((args.k_arms, n_pulls), {})
        for name, score in scores.items():
            print(f"k={args.k_arms} n={n_pulls} {name:>10}: {score} "
                  f"(paper: {paper.get(name.split('_')[0], '-')})")
        settings.append({
            "k_arms": args.k_arms, "n_pulls": n_pulls, "ucb1_exploration": exploration,
            "scores": {name: {"total_reward": s.mean, "ci95": s.ci95, "tasks": s.n}
                       for name, s in scores.items()},
            "paper_result": {**paper, "source": papers.RL2_BANDIT_SOURCE}})
    path = records.WEIGHTS_DIR / "bandit_baselines.json"
    records.write_record(path, {
        "name": "bandit_baselines", "kind": "measurement",
        "protocol": (f"{args.test_tasks} test bandits per setting (BernoulliBandits.test_set, seed "
                     f"{bandits.TEST_SEED}), arm probabilities uniform in [0, 1]; total reward "
                     f"per bandit, mean ± 95 % CI; common random numbers shared with RL²'s test; "
                     f"ucb1: c = 1; ucb1_tuned: c picked on 1,000 validation bandits (seed 0)"),
        "seed": args.seed, "settings": settings,
        "command": "python scripts/bandit_baselines.py " + " ".join(argv or sys.argv[1:])})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
