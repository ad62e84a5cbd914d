"""Meta-train one algorithm on Omniglot, evaluate it on 600 test episodes, and export the result.

The long ``full`` runs behind notebook 04's numbers are made with this script. It resumes from
its checkpoints in ``runs/<name>/``; stop it with Ctrl-C (or ``timeout -s INT``) and it saves a
checkpoint, evaluates what it has and exports ``weights/<name>.npz`` (the meta-learned variables),
``weights/<name>.json`` (how they were made and how well they do) and
``weights/<name>.history.json`` (learning curves), plus, for an unfinished run,
``weights/resume/<name>/`` (the last checkpoint, so a fresh clone can continue it). Run it
again to continue training.

    python scripts/train_omniglot.py --algorithm maml --n-way 5 --k-shot 1
    python scripts/train_omniglot.py --algorithm reptile --n-way 5 --k-shot 5 --eval-only
    python scripts/train_omniglot.py --algorithm metalstm --k-shot 5
    python scripts/train_omniglot.py --algorithm mann     # mann_add, lstm: 5 classes x 10 instances
    python scripts/train_omniglot.py --algorithm maml --strategy mirrored   # all GPUs of a machine

With ``--strategy multi-worker`` start the same command on every machine (``TF_CONFIG`` set on
each, or ``srun`` inside a Slurm job); the chief (worker 0) evaluates and exports, the other
workers keep their checkpoints in ``runs/<name>/worker-<i>/`` and stop after training. Stopping
one worker stops the others with an error; start them all again to resume.

Sequence learners (the MANN and its LSTM baseline, ``evaluation="by_instance"`` in
``papers.OMNIGLOT_SETTINGS``) are scored as in Santoro et al.'s Table 1: accuracy at the 1st,
2nd, 3rd, 4th, 5th and 10th presentation of a class over the test episodes, one entry of the
record's ``tests`` per presentation (with ``"instance"``), instead of on 15 query drawings.
"""

from __future__ import annotations

import argparse
import itertools
import sys

import long_run


def training_data(args, setting) -> dict:
    """What a training step saw, for the record: a mini-batch size or an episode's drawings."""
    from metalearn_helpers import experiments

    if "batch_size" in setting:
        return {"batch_size": setting["batch_size"]}
    _, n_query = experiments.training_shape(args.algorithm, args.n_way, args.k_shot)
    return {"train_shots": args.k_shot + n_query}


def instance_tests(args, algorithm, data, name, steps) -> list[dict]:
    """The record's ``tests`` of a sequence learner: one entry per presentation index."""
    from metalearn_helpers import experiments, papers

    scores = experiments.evaluate_by_instance(algorithm, data, args.n_way, args.k_shot,
                                              n_episodes=args.episodes, protocol=args.protocol)
    paper = (papers.RESULTS_BY_INSTANCE.get(args.algorithm, {})
             if args.protocol == "vinyals" else {})
    tests = []
    for instance, score in scores.items():
        print(f"{name} after {steps} steps: {args.n_way} classes x {args.k_shot} instances, "
              f"accuracy at presentation {instance}: {score.as_percent()}")
        tests.append({"n_way": args.n_way, "k_shot": args.k_shot, "instance": instance,
                      "accuracy": 100 * score.mean, "ci95": 100 * score.ci95,
                      "episodes": score.n, "n_query": 0,
                      "protocol": papers.PROTOCOLS[args.protocol]
                                  + "; accuracy at the k-th presentation of a class in "
                                    "sequences of n_way x k_shot drawings (Santoro et al.)",
                      "paper_result": {"accuracy": paper.get(instance), "ci95": None,
                                       "source": papers.RESULTS_BY_INSTANCE_SOURCE}})
    return tests


def paper_results(args, n_way, k_shot) -> dict:
    """The published numbers a test is compared with, as record fields."""
    from metalearn_helpers import papers

    key = (args.algorithm, n_way, k_shot)
    vinyals = args.protocol == "vinyals"
    paper_mean, paper_ci = papers.OMNIGLOT_RESULTS.get(key if vinyals else None, (None, None))
    other = papers.MINIIMAGENET_RESULTS.get(key)
    transductive = papers.OMNIGLOT_RESULTS_TRANSDUCTIVE.get(key if vinyals else None)
    return {"paper_result": {"accuracy": paper_mean, "ci95": paper_ci},
            **({} if other is None else {"paper_result_miniimagenet": {
                "accuracy": other[0], "ci95": other[1]}}),
            **({} if transductive is None else {"paper_result_transductive": {
                "accuracy": transductive[0], "ci95": transductive[1]}})}


def episode_tests(args, algorithm, data, name, steps, protocol) -> list[dict]:
    """The record's ``tests`` of an episodic learner: the course's 15 queries per class, and the
    paper code's test episodes where they differ (MAML family: K or 1 query per class, which
    matters with transductive batch norm), for every test way, shot and adaptation."""
    from metalearn_helpers import experiments, records

    setting = experiments.setting(args.algorithm)
    test_ways = (20,) if args.protocol == "lake" else setting.get("test_ways", (args.n_way,))
    paper_query = records.paper_test_query(args.algorithm, args.k_shot) or 15
    tests = []
    for n_way, k_shot, adaptation, n_query in itertools.product(
            test_ways, setting.get("test_shots", (args.k_shot,)),
            setting.get("test_adaptations", (None,)), (15,) + tuple({paper_query} - {15})):
        if adaptation is not None:
            algorithm.adaptation = adaptation
        score = experiments.evaluate_omniglot(algorithm, data, n_way, k_shot,
                                              n_episodes=args.episodes, n_query=n_query,
                                              protocol=args.protocol)
        print(f"{name} after {steps} steps: {n_way}-way {k_shot}-shot"
              f"{'' if adaptation is None else f' ({adaptation})'}, {n_query} query drawing(s) "
              f"per class: test accuracy {score.as_percent()}")
        tests.append({"n_way": n_way, "k_shot": k_shot, "accuracy": 100 * score.mean,
                      "ci95": 100 * score.ci95, "episodes": score.n, "n_query": n_query,
                      "protocol": protocol
                      + ("" if n_query == 15 else f"; {n_query} query drawing(s) per class, "
                         "normalised together, as the paper's code tests"),
                      **paper_results(args, n_way, k_shot),
                      **({} if adaptation is None else {"adaptation": adaptation})})
    return tests


def export(args, algorithm, name, run_dir, steps, planned, tests, command) -> None:
    """Write ``weights/<run>.{npz,history.json,json}`` and the resume checkpoint."""
    from metalearn_helpers import experiments

    setting = experiments.setting(args.algorithm)
    long_run.export(algorithm, name, run_dir, steps=steps, planned=planned, args=args,
                    command=command, record={
        "algorithm": args.algorithm, "paper": setting["paper"],
        "n_way": args.n_way, "k_shot": args.k_shot, "protocol": args.protocol,
        "train_split": experiments.training_split(args.algorithm, args.protocol),
        "hyperparameters": {**experiments.hyperparameters(args.algorithm, args.k_shot),
                            "meta_lr": setting["meta_lr"],
                            "meta_batch_size": setting["meta_batch_size"],
                            **training_data(args, setting)},
        "test": tests[0], "tests": tests, "paper_result": tests[0]["paper_result"]})


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithm", required=True,
                        help="maml, fomaml, metasgd, anil, reptile, protonet, matching, "
                             "baseline, metalstm, mann, mann_add or lstm")
    parser.add_argument("--n-way", type=int, default=None,
                        help="classes per training episode (default: the paper's; 5 for MAML)")
    parser.add_argument("--k-shot", type=int, default=None,
                        help="support drawings per class (default 1; instances per class, 10, "
                             "for mann, mann_add and lstm)")
    parser.add_argument("--n-steps", type=int, default=None,
                        help="total meta-steps (default: the paper's)")
    parser.add_argument("--episodes", type=int, default=600, help="test episodes")
    parser.add_argument("--protocol", default="vinyals", choices=["vinyals", "lake"],
                        help="Vinyals' split with rotations, or Lake's alphabet split (tested "
                             "20-way within one evaluation alphabet)")
    long_run.add_run_arguments(
        parser,
        intra_op_help="threads inside one op (default 1: a MAML step is ~1,500 tiny ops, and "
                      "splitting each costs more than it gains; see benchmarks/)",
        inter_op_help="ops run in parallel, e.g. two tasks of a meta-batch (0: all cores; with "
                      "intra-op 1, a run alone on 2 cores at 1 uses one core: Meta-SGD 5-shot "
                      "ran 0.9 steps/s so and 2.1 at 2; use 1 only for two runs sharing the "
                      "machine)")
    parser.add_argument("--strategy", default="default",
                        choices=["default", "mirrored", "multi-worker"],
                        help="default: one device (the GPU if there is one); mirrored: all GPUs "
                             "of this machine; multi-worker: the machines of TF_CONFIG or of the "
                             "Slurm job. The tasks of each meta-batch are split across the "
                             "devices; the result equals one device's (README, 'Training on a "
                             "GPU, several GPUs or a cluster'). The thread options are for CPU "
                             "runs only: they are ignored when a GPU is visible")
    return parser, parser.parse_args(argv)


def main(argv=None) -> int:
    parser, args = parse_args(argv)
    long_run.start_process(args)  # before TensorFlow starts
    from metalearn_helpers import distributed, experiments, papers
    from metalearn_helpers.omniglot import load_omniglot
    from metalearn_helpers.training import train_or_resume

    strategy = (None if args.strategy == "default" else
                distributed.make_strategy(args.strategy))

    try:
        setting = experiments.setting(args.algorithm)
        args.n_way = args.n_way or setting.get("train_way", 5)
        args.k_shot = args.k_shot or experiments.default_k_shot(args.algorithm)
        experiments.hyperparameters(args.algorithm, args.k_shot)
    except ValueError as error:
        parser.error(str(error))
    planned = args.n_steps or setting["n_steps"]
    name = experiments.run_name(args.algorithm, args.n_way, args.k_shot, args.protocol)
    run_dir = long_run.run_folder(name)
    data = load_omniglot()

    def train(n_steps):
        return experiments.train_omniglot(args.algorithm, data, args.n_way, args.k_shot,
                                          n_steps, seed=args.seed, run_dir=run_dir,
                                          protocol=args.protocol, strategy=strategy)

    algorithm, steps, interrupted = train_or_resume(
        train, planned, distributed.worker_run_dir(run_dir, strategy),
        train_more=not args.eval_only)
    if not distributed.is_chief(strategy):
        return 130 if interrupted else 0  # the chief evaluates and exports
    if algorithm is None:
        print(f"no checkpoint in {run_dir}: nothing to evaluate", file=sys.stderr)
        return 1
    if setting.get("evaluation") == "by_instance":
        tests = instance_tests(args, algorithm, data, name, steps)
    else:
        train_split = experiments.training_split(args.algorithm, args.protocol)
        protocol = papers.PROTOCOLS[args.protocol] + (
            "" if train_split == "train" else "; trained on all 1,200 training characters "
                                              "(train + validation), as the paper's final model")
        tests = episode_tests(args, algorithm, data, name, steps, protocol)
    export(args, algorithm, name, run_dir, steps, planned, tests,
           "python scripts/train_omniglot.py " + " ".join(argv or sys.argv[1:]))
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
