"""Speed of MAML for RL on point navigation (notebook 09): seconds per meta-iteration, second
order against first order and against one iteration of ordinary policy gradient, and environment
steps per second of the policy's rollouts, all measured in the same run.

    python benchmarks/maml_rl.py                  # a few minutes on one core
    python benchmarks/maml_rl.py --meta-batch-size 10 --iterations 2

An iteration of each learner (``MAMLRL.train_step``) samples ``meta_batch_size`` goals x 20
trajectories x 100 steps before adaptation and again after (MAML), or 40 trajectories once (the
pre-trained baseline, the same environment steps), then makes one Adam step. The rollout rate
counts environment steps including the policy's forward pass (the environment alone:
``benchmarks/rl_envs.py``).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def seconds_per_iteration(learner, meta_batch_size: int, iterations: int) -> tuple:
    """``(first_call_seconds, median seconds of the next iterations)`` of ``train_step``."""
    from metalearn_helpers.maml_rl import PointGoals

    batches = PointGoals().batches(meta_batch_size, seed=0)
    start = time.perf_counter()
    learner.train_step(next(batches).goals)
    first = time.perf_counter() - start
    times = []
    for _ in range(iterations):
        goals = next(batches).goals
        start = time.perf_counter()
        float(learner.train_step(goals)["loss"])
        times.append(time.perf_counter() - start)
    return first, float(np.median(times))


def rollout_steps_per_second(meta_batch_size: int, repeats: int) -> float:
    """Environment steps per second of :func:`sample_trajectories` (20 per goal, 100 steps)."""
    from metalearn_helpers.point_policy import init_policy, sample_trajectories
    from metalearn_helpers.rl_envs import MAX_STEPS, sample_goals

    params, goals = init_policy(seed=0), sample_goals(meta_batch_size, seed=0)
    sample_trajectories(params, goals, 20, 0)  # trace the policy's forward pass
    best = min(_timed(lambda: sample_trajectories(params, goals, 20, 0)) for _ in range(repeats))
    return meta_batch_size * 20 * MAX_STEPS / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meta-batch-size", type=int, default=40, help="goals per iteration")
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations (median)")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow intra/inter-op threads")
    args = parser.parse_args(argv)
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(args.threads)
    from metalearn_helpers.maml_rl import MAMLRL

    rate = rollout_steps_per_second(args.meta_batch_size, repeats=3)
    print(f"rollouts: {args.meta_batch_size} goals x 20 trajectories x 100 steps, policy "
          f"100-100 ReLU: {rate:,.0f} environment steps/s ({args.threads} TF thread(s))")
    learners = {"second-order MAML": MAMLRL(),
                "first-order MAML": MAMLRL(first_order=True),
                "policy gradient (pretrained, 40 trajectories)": MAMLRL(inner_steps=0,
                                                                        n_trajectories=40)}
    baseline = None
    print(f"seconds per iteration, {args.meta_batch_size} goals, median of {args.iterations}:")
    for label, learner in learners.items():
        first, seconds = seconds_per_iteration(learner, args.meta_batch_size, args.iterations)
        baseline = baseline or seconds
        steps = args.meta_batch_size * 40 * 100
        print(f"  {label:<46} {seconds:6.2f} s ({seconds / baseline:4.2f}x second order; "
              f"{steps / seconds:,.0f} env steps/s; first call {first:.1f} s)")


if __name__ == "__main__":
    main()
