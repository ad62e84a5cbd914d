"""Speed of notebook 09's RL machinery: environment steps per second of the batched point-navigation
and bandit environments against stepping one environment at a time (the ratio, measured in the
same run), and seconds per RL² iteration.

    python benchmarks/rl_envs.py                      # about a minute
    python benchmarks/rl_envs.py --rl2-iterations 0   # environments only, a few seconds

The "one at a time" baseline runs the same environment class with a batch of one in a Python
loop, as a gym-style environment is stepped, so the ratio is what batching buys.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def navigation_steps_per_second(n_envs: int, batched: bool, repeats: int) -> float:
    """Full 100-step episodes of ``n_envs`` point-navigation tasks under a random policy."""
    from metalearn_helpers.rl_envs import MAX_STEPS, PointNavigation, sample_goals

    goals = sample_goals(n_envs, seed=0)
    actions = np.random.default_rng(0).uniform(-0.1, 0.1, size=(MAX_STEPS, n_envs, 2))

    def run():
        envs = [PointNavigation(goals)] if batched else [PointNavigation(g[None]) for g in goals]
        for i, env in enumerate(envs):
            env.reset()
            for t in range(MAX_STEPS):
                env.step(actions[t] if batched else actions[t, i:i + 1])

    return n_envs * MAX_STEPS / _best_of(repeats, run)


def bandit_steps_per_second(n_envs: int, n_pulls: int, batched: bool, repeats: int) -> float:
    """``n_pulls`` random pulls in each of ``n_envs`` 5-armed bandits."""
    from metalearn_helpers.rl_envs import BernoulliBandit

    p = np.random.default_rng(0).random((n_envs, 5))
    arms = np.random.default_rng(1).integers(0, 5, size=(n_pulls, n_envs))

    def run():
        envs = [BernoulliBandit(p, seed=0)] if batched else [
            BernoulliBandit(row[None], seed=0) for row in p]
        for i, env in enumerate(envs):
            for t in range(n_pulls):
                env.pull(arms[t] if batched else arms[t, i:i + 1])

    return n_envs * n_pulls / _best_of(repeats, run)


def rl2_seconds_per_iteration(n_pulls: int, meta_batch_size: int, units: int, iterations: int):
    """``(first_call_seconds, seconds_per_iteration, pulls_per_second)`` of ``RL2.train_step``."""
    from metalearn_helpers.bandits import BernoulliBandits
    from metalearn_helpers.rl2 import RL2

    tasks = BernoulliBandits(k_arms=5, n_pulls=n_pulls)
    rl2 = RL2(k_arms=5, n_pulls=n_pulls, units=units)
    batches = tasks.batches(meta_batch_size, seed=0)
    start = time.perf_counter()
    float(rl2.train_step(next(batches).arrays()[0])["loss"])
    first = time.perf_counter() - start
    times = []
    for _ in range(iterations):
        p = next(batches).arrays()[0]
        start = time.perf_counter()
        float(rl2.train_step(p)["loss"])
        times.append(time.perf_counter() - start)
    per_iteration = float(np.median(times))
    return first, per_iteration, meta_batch_size * n_pulls / per_iteration


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-envs", type=int, default=400, help="environments stepped together")
    parser.add_argument("--repeats", type=int, default=3, help="timings per case (best kept)")
    parser.add_argument("--rl2-iterations", type=int, default=5,
                        help="timed RL² iterations per setting (0: skip RL²)")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow intra/inter-op threads")
    args = parser.parse_args(argv)
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(args.threads)

    print(f"environment steps per second, {args.n_envs} environments, best of {args.repeats}:")
    for label, measure in [
            ("point navigation (100 steps)",
             lambda batched: navigation_steps_per_second(args.n_envs, batched, args.repeats)),
            ("5-armed bandit (100 pulls)",
             lambda batched: bandit_steps_per_second(args.n_envs, 100, batched, args.repeats))]:
        one, batched = measure(False), measure(True)
        print(f"  {label:<30} one at a time {one:>12,.0f}/s   batched {batched:>12,.0f}/s   "
              f"ratio {batched / one:6.1f}x")
    if args.rl2_iterations:
        print(f"RL² iteration (RL2.train_step: rollout + GAE + 4 PPO epochs), GRU units, "
              f"{args.threads} TF thread(s), median of {args.rl2_iterations}:")
        baseline = None
        for n_pulls, meta_batch_size, units in [(10, 250, 256), (100, 100, 256),
                                                (100, 100, 128)]:
            first, seconds, pulls = rl2_seconds_per_iteration(n_pulls, meta_batch_size, units,
                                                              args.rl2_iterations)
            baseline = baseline or seconds
            print(f"  n={n_pulls:>3} pulls x {meta_batch_size} bandits, {units} units: "
                  f"{seconds:.3f} s/iteration ({pulls:,.0f} pulls/s; first call {first:.1f} s; "
                  f"{seconds / baseline:.1f}x the n=10 iteration)")


if __name__ == "__main__":
    main()
