"""Meta-train a learner on Fashion-MNIST classes 0-4, test it on 5-way episodes of classes 5-9,
and export the result.

The ``full`` runs behind notebook 07's Fashion-MNIST rows are made with this script. Like
``scripts/train_omniglot.py`` it resumes from its checkpoints in ``runs/<name>/``; stop it with
Ctrl-C (or ``timeout -s INT``) and it saves a checkpoint, evaluates what it has and exports
``weights/<name>.npz``, ``weights/<name>.json`` (record) and ``weights/<name>.history.json``.

    python scripts/train_fashion_mnist.py --algorithm protonet --k-shot 1
    python scripts/train_fashion_mnist.py --algorithm maml --k-shot 5 --inter-op-threads 1
    python scripts/train_fashion_mnist.py --algorithm baseline

Test: 600 episodes of the official test images of classes 5-9 at 1 and 5 shots, 15 queries
per class (``papers.FASHION_MNIST_PROTOCOL``); the baseline is scored with both of its test-time
adaptations (nearest class mean, fine-tuned linear head).
"""

from __future__ import annotations

import argparse
import sys

import long_run


def fashion_tests(args, learner, data, name, steps) -> list[dict]:
    """The record's ``tests``: every test shot (and adaptation, for the baseline)."""
    from metalearn_helpers import cross_domain, papers

    adaptations = cross_domain.fashion_setting(args.algorithm).get("test_adaptations", (None,))
    tests = []
    for k_shot in cross_domain.TEST_SHOTS:
        for adaptation in adaptations:
            if adaptation is not None:
                learner.adaptation = adaptation
            score = cross_domain.evaluate_fashion(learner, data, k_shot,
                                                  n_episodes=args.episodes)
            method = args.algorithm + ("" if adaptation is None else f" ({adaptation})")
            print(f"{name} after {steps} steps, {method}: 5-way {k_shot}-shot test accuracy "
                  f"{score.as_percent()}")
            tests.append({"method": method, "trained_on": "fashion_mnist", "n_way": 5,
                          "k_shot": k_shot, "accuracy": 100 * score.mean,
                          "ci95": 100 * score.ci95, "episodes": score.n, "n_query": 15,
                          "protocol": papers.FASHION_MNIST_PROTOCOL})
    return tests


def export(args, learner, name, run_dir, steps, planned, tests, command) -> None:
    """Write ``weights/<run>.{npz,history.json,json}`` and the resume checkpoint."""
    from metalearn_helpers import cross_domain, experiments

    setting = cross_domain.fashion_setting(args.algorithm)
    training = ({"batch_size": setting["batch_size"], "n_classes": setting["n_classes"]}
                if "batch_size" in setting else
                {"train_way": setting["train_way"],
                 "train_query": setting.get("train_query", args.k_shot)})
    long_run.export(learner, name, run_dir, steps=steps, planned=planned, args=args,
                    command=command, record={
        "algorithm": args.algorithm, "paper": setting["paper"], "n_way": 5,
        "k_shot": args.k_shot,
        "hyperparameters": {**experiments.hyperparameters(setting["base"], args.k_shot),
                            "meta_lr": setting["meta_lr"],
                            "meta_batch_size": setting["meta_batch_size"], **training},
        "test": tests[0], "tests": tests})


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithm", required=True, help="protonet, maml or baseline")
    parser.add_argument("--k-shot", type=int, default=1, help="support images per class")
    parser.add_argument("--n-steps", type=int, default=None,
                        help="total steps (default: papers.FASHION_MNIST_SETTINGS)")
    parser.add_argument("--episodes", type=int, default=600, help="test episodes")
    long_run.add_run_arguments(parser)
    return parser, parser.parse_args(argv)


def main(argv=None) -> int:
    parser, args = parse_args(argv)
    long_run.start_process(args)  # before TensorFlow starts
    from metalearn_helpers import cross_domain
    from metalearn_helpers.fashion_mnist import load_fashion_mnist

    try:
        setting = cross_domain.fashion_setting(args.algorithm)
    except ValueError as error:
        parser.error(str(error))
    planned = args.n_steps or setting["n_steps"]
    name = cross_domain.fashion_run_name(args.algorithm, args.k_shot)
    run_dir = long_run.run_folder(name)
    data = load_fashion_mnist()

    def train(n_steps):
        return cross_domain.train_fashion_mnist(args.algorithm, data, args.k_shot, n_steps,
                                                seed=args.seed, run_dir=run_dir)

    learner, steps, interrupted = long_run.train_or_exit(train, planned, run_dir,
                                                         args.eval_only)
    tests = fashion_tests(args, learner, data, name, steps)
    export(args, learner, name, run_dir, steps, planned, tests,
           "python scripts/train_fashion_mnist.py " + " ".join(argv or sys.argv[1:]))
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
