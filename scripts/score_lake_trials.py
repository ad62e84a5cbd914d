"""Score the committed Omniglot embeddings on Lake et al.'s 400 official one-shot trials, measure
what makes those trials differ from the course's random within-alphabet episodes, and record both
in ``weights/lake_trials.json``.

The trials (``all_runs.zip``, :mod:`metalearn_helpers.lake_trials`) are scored as Lake's
``demo_classification.py`` scores them: in each of the 20 runs, each of the 20 test drawings is
given the class of its most similar training drawing (here: the learner's largest logit, i.e.
the nearest prototype or attention target); the error is over all 400 trials, with a 95 %
Wilson interval over the trials and a 95 % interval over the 20 per-run errors. Lake's own demo
method (modified Hausdorff distance on the 105x105 drawings) is scored too, as a check of the
protocol: his demo reports 38.8 % errors.

Then the Lake-protocol ProtoNet is scored on random 20-way 1-shot episodes (one query drawing per
class) that differ from the official runs in one respect at a time: all 20 evaluation alphabets or
the trials' 10, random characters or the runs' own 20, two drawers per class or one drawer pair
per episode, any of the 20 drawers or only the first 8 (the only ones the runs use).

    python scripts/score_lake_trials.py                 # about 5 minutes on 2 cores
    python scripts/score_lake_trials.py --episodes 200 --no-hausdorff
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Committed runs that can score a 20-way 1-shot episode: (record, baseline adaptation or None).
RUNS = [("omniglot_protonet_60w1s_lake", None), ("omniglot_protonet_60w1s", None),
        ("omniglot_protonet_60w5s", None), ("omniglot_matching_20w1s", None),
        ("omniglot_matching_20w5s", None), ("omniglot_baseline", "centroid"),
        ("omniglot_baseline", "linear")]
LAKE_RUN = "omniglot_protonet_60w1s_lake"
RUN_DRAWERS = range(8)  # the official runs draw on drawers 1-8 (indices 0-7) only


def seen_in_training(record: dict, data, trial_characters: np.ndarray) -> int:
    """How many of the trials' distinct characters are among the run's training characters."""
    from metalearn_helpers import experiments
    from metalearn_helpers.omniglot import split_characters

    split = experiments.training_split(record["algorithm"], record["protocol"])
    training = split_characters(data, record["protocol"])[split]
    return int(np.isin(np.unique(trial_characters), training).sum())


def official_scores(data, trials, located, hausdorff: bool) -> list[dict]:
    """Every committed run (and pixel distances, and Lake's demo method) on the 400 trials."""
    from metalearn_helpers import cross_domain, lake_trials, records

    characters = located["training_character"]
    rows = []

    def add(method, trained_on, predictions, **extra):
        summary = lake_trials.error_summary(predictions != trials.answers)
        print(f"{method}: {summary['error']:.2f} % errors, Wilson 95 % "
              f"{summary['wilson95'][0]:.1f}-{summary['wilson95'][1]:.1f}, "
              f"± {summary['ci95_runs']:.1f} over runs")
        rows.append({"method": method, "trained_on": trained_on, **extra, **summary})

    for name, adaptation in RUNS:
        record = records.load_record(records.WEIGHTS_DIR / f"{name}.json")
        learner = cross_domain.load_learner(record, records.WEIGHTS_DIR)
        if adaptation:
            learner.adaptation = adaptation
        trained_on = ("the 30 background alphabets (Lake's split)" if record["protocol"] == "lake"
                      else "Vinyals' 1,200 training characters (background and evaluation)")
        add(f"{name}" + (f", {adaptation}" if adaptation else ""), trained_on,
            lake_trials.trial_predictions(
                lambda e: cross_domain.episode_predictions(learner, e), trials),
            run=name, trial_characters_seen=seen_in_training(record, data, characters))
    pixels = cross_domain.PixelNearestNeighbour()
    add("pixel nearest neighbour (28x28, squared distance)", "nothing",
        lake_trials.trial_predictions(lambda e: cross_domain.episode_predictions(pixels, e),
                                      trials))
    if hausdorff:
        full = lake_trials.load_lake_trials(image_size=105)
        add("modified Hausdorff distance (Lake's demo, 105x105; the demo reports 38.8 %)",
            "nothing", lake_trials.trial_predictions(lake_trials.hausdorff_predict, full))
    return rows


def conditions(data, located) -> list[dict]:
    """Episode families between the course's random test and the official runs, one change at
    a time: ``(label, alphabets, characters, drawers, family)``."""
    from metalearn_helpers.lake_trials import WithinAlphabetEpisodes
    from metalearn_helpers.omniglot import split_characters

    evaluation = split_characters(data, "lake")["test"]
    alphabets = {a: evaluation[data.alphabets[evaluation] == a]
                 for a in np.unique(data.alphabets[evaluation])}
    ten = [alphabets[a] for a in np.unique(located["alphabet"])]
    runs = list(located["training_character"])
    run_alphabets = [alphabets[a] for a in located["alphabet"]]
    run_pairs = np.stack([located["training_drawer"][:, 0], located["test_drawer"][:, 0]], 1)
    family = WithinAlphabetEpisodes
    return [
        ("the course's test: 20 alphabets, random characters, drawers per class", 20, "random",
         "per class, any", family(data, alphabets.values())),
        ("the trials' 10 alphabets", 10, "random", "per class, any", family(data, ten)),
        ("10 alphabets, one drawer pair per episode", 10, "random", "one pair, any",
         family(data, ten, drawer_pairs=True)),
        ("10 alphabets, drawer pair among drawers 1-8", 10, "random", "one pair, 1-8",
         family(data, ten, drawer_pairs=True, drawers=RUN_DRAWERS)),
        ("the runs' characters, drawers per class", 10, "the runs'", "per class, any",
         family(data, runs)),
        ("the runs' characters, one drawer pair per episode", 10, "the runs'", "one pair, any",
         family(data, runs, drawer_pairs=True)),
        ("the runs' characters, drawer pair among drawers 1-8", 10, "the runs'", "one pair, 1-8",
         family(data, runs, drawer_pairs=True, drawers=RUN_DRAWERS)),
        ("each run's drawer pair, random characters of its alphabet", 10, "random",
         "the run's pair", family(data, run_alphabets, pairs=run_pairs)),
        ("each run's characters and drawer pair (the official trials, from images_evaluation)",
         10, "the runs'", "the run's pair", family(data, runs, pairs=run_pairs)),
    ]


def condition_scores(data, located, episodes: int, seed: int) -> list[dict]:
    """The Lake-protocol ProtoNet's error on ``episodes`` episodes of every condition."""
    from metalearn_helpers import cross_domain, evaluation, records

    record = records.load_record(records.WEIGHTS_DIR / f"{LAKE_RUN}.json")
    learner = cross_domain.load_learner(record, records.WEIGHTS_DIR)
    rows = []
    for label, n_alphabets, characters, drawers, tasks in conditions(data, located):
        score = evaluation.evaluate(learner.score_episode, tasks, episodes, seed=seed,
                                    progress=False)
        error, ci95 = 100 * (1 - score.mean), 100 * score.ci95
        print(f"{label}: {error:.2f} ± {ci95:.2f} % errors ({episodes} episodes)")
        rows.append({"run": LAKE_RUN, "condition": label, "alphabets": n_alphabets,
                     "characters": characters, "drawers": drawers, "episodes": score.n,
                     "queries_per_class": 1, "error": error, "ci95": ci95})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=600,
                        help="random episodes per condition (at least 100)")
    parser.add_argument("--seed", type=int, default=2017, help="seed of the random episodes")
    parser.add_argument("--no-hausdorff", action="store_true",
                        help="skip Lake's demo method (a few minutes on 105x105 drawings)")
    args = parser.parse_args(argv)
    if args.episodes < 100:
        parser.error(f"--episodes must be at least 100, got {args.episodes}.")
    from metalearn_helpers import lake_trials, papers, records
    from metalearn_helpers.omniglot import load_omniglot

    data = load_omniglot(verbose=False)
    trials = lake_trials.load_lake_trials()
    located = lake_trials.locate_trials(trials, data)
    record = {
        "name": "lake_trials", "kind": "measurement", "seed": args.seed,
        "protocol": lake_trials.TRIALS_PROTOCOL,
        "trials": {"file": "all_runs.zip", "runs": lake_trials.N_RUNS,
                   "alphabets": sorted(set(located["alphabet"].tolist())),
                   "characters": len(np.unique(located["training_character"])),
                   "drawers_used": sorted(set(located["training_drawer"].ravel().tolist())
                                          | set(located["test_drawer"].ravel().tolist()))},
        "official": official_scores(data, trials, located, not args.no_hausdorff),
        "conditions": condition_scores(data, located, args.episodes, args.seed),
        "published": papers.LAKE_TRIALS_ERRORS,
        "command": "python scripts/score_lake_trials.py " + " ".join(
            sys.argv[1:] if argv is None else argv)}
    path = records.WEIGHTS_DIR / "lake_trials.json"
    records.write_record(path, record)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
