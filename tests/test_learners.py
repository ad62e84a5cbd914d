"""metalearn_helpers.learners (the learner protocol) and checks (one argument check)."""

from __future__ import annotations

import pytest

from metalearn_helpers import experiments
from metalearn_helpers.checks import check_choice, check_int, check_positive
from metalearn_helpers.episodes import SinusoidTasks
from metalearn_helpers.learners import Learner, check_learner
from metalearn_helpers.mann import MemoryAugmentedNetwork
from metalearn_helpers.training import meta_train


class HalfLearner(Learner):
    def trackables(self):
        return {}


def test_a_learner_missing_part_of_the_protocol_is_named():
    with pytest.raises(TypeError, match=r"HalfLearner .* lacks train_step, score_episode, "
                                        r"meta_variables\. A learner needs"):
        check_learner(HalfLearner())
    with pytest.raises(TypeError, match="lacks train_step"):
        meta_train(HalfLearner(), SinusoidTasks(), n_steps=1, meta_batch_size=1)
    with pytest.raises(TypeError, match="object does not follow .* lacks train_step, score_ep"):
        check_learner(object())


def test_every_registered_learner_follows_the_protocol():
    for cls in experiments.LEARNERS.values():
        check_learner(cls.__new__(cls))
        own_step = cls.train_step is not Learner.train_step
        assert own_step or cls.meta_gradient is not Learner.meta_gradient, cls
        compiled = cls.train_step if cls is not MemoryAugmentedNetwork else cls._sequence_update
        assert hasattr(compiled, "python_function")  # a tf.function (the MANN checks first)


def test_an_unknown_algorithm_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"algorithm must be one of \['anil', 'baseline', .*got 'mamal'"):
        experiments.setting("mamal")
    with pytest.raises(ValueError, match="algorithm must be one of"):
        experiments.make_algorithm("mamal", 5)


@pytest.mark.parametrize("call,error,fragment", [
    (lambda: check_int("k_shot", 1.0), TypeError, "k_shot must be an int, got float 1.0"),
    (lambda: check_int("k_shot", True), TypeError, "got bool"),
    (lambda: check_int("k_shot", 0), ValueError, "k_shot must be at least 1, got 0"),
    (lambda: check_positive("inner_lr", "0.1"), TypeError, "inner_lr must be a positive number"),
    (lambda: check_positive("inner_lr", 0.0), ValueError, "got 0.0"),
    (lambda: check_choice("task_type", "ranking", ("classification", "regression")), ValueError,
     "task_type must be one of ('classification', 'regression'), got 'ranking'"),
])
def test_argument_checks(call, error, fragment):
    with pytest.raises(error) as raised:
        call()
    assert fragment in str(raised.value)
    assert check_int("n", 3) == 3
