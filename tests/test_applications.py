"""Notebook 07's helpers: cross_domain (Fashion-MNIST few-shot), hospitals (hospitals as
tasks) and the notebook-07 section of records (schema, tables)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from metalearn_helpers import application_tables, cross_domain, hospitals, records
from metalearn_helpers import heart_disease as hd
from metalearn_helpers.episodes import Episode


# -- cross_domain ---------------------------------------------------------------------------------
def test_image_batches_have_global_labels_and_no_query():
    images = np.arange(40 * 4 * 4, dtype=np.uint8).reshape(40, 4, 4)
    labels = np.repeat([7, 3, 9, 5], 10)
    batch = cross_domain.ImageBatches(images, labels, batch_size=8).sample(0)
    assert batch.support_x.shape == (8, 4, 4, 1) and batch.query_x.shape == (0, 4, 4, 1)
    expected = np.searchsorted([3, 5, 7, 9], labels[batch.info["images"]])
    np.testing.assert_array_equal(batch.support_y, expected)
    assert batch.support_x.max() <= 1.0


def test_image_batches_refuse_bad_input():
    with pytest.raises(ValueError, match="batch_size=50 is more than the 40 images"):
        cross_domain.ImageBatches(np.zeros((40, 4, 4)), np.zeros(40, int), batch_size=50)
    with pytest.raises(ValueError, match="one label each"):
        cross_domain.ImageBatches(np.zeros((40, 4, 4)), np.zeros(39, int), batch_size=5)


def test_pixel_nearest_neighbour_uses_the_nearest_support_image():
    support_x = np.array([[0.0], [10.0], [4.0], [20.0]]).reshape(4, 1, 1, 1)
    support_y = np.array([0, 0, 1, 1])
    query_x = np.array([[9.0], [5.0]]).reshape(2, 1, 1, 1)
    logits = cross_domain.PixelNearestNeighbour().logits(support_x, support_y, query_x)
    np.testing.assert_allclose(logits, [[-1.0, -25.0], [-25.0, -1.0]])
    episode = Episode(support_x, support_y, query_x, np.array([0, 1]))
    assert cross_domain.PixelNearestNeighbour().score_episode(episode) == 1.0


def test_fashion_settings_and_names():
    assert cross_domain.fashion_setting("protonet")["train_way"] == 5
    assert cross_domain.fashion_run_name("maml", 5) == "fashion_mnist_maml_5w5s"
    assert cross_domain.fashion_run_name("baseline", 1) == "fashion_mnist_baseline"
    with pytest.raises(ValueError, match="name must be one of"):
        cross_domain.fashion_setting("reptile")


def test_fashion_baseline_has_five_classes():
    learner = cross_domain.make_fashion_learner("baseline", 1)
    assert learner.head.units == 5


# -- hospitals ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def heart(heart_disease_dir):
    return hd.load_heart_disease(root=heart_disease_dir, verbose=False)


def test_patient_tasks_draw_from_one_hospital_without_repeats():
    patients = {"a": (np.arange(30)[:, None] * np.ones((1, 13)), np.zeros(30, int)),
                "b": (1000 + np.arange(40)[:, None] * np.ones((1, 13)), np.ones(40, int))}
    tasks = hospitals.HospitalPatientTasks(patients, k_shot=5, n_query=10)
    for seed in range(5):
        episode = tasks.sample(seed)
        rows = np.concatenate([episode.support_x[:, 0], episode.query_x[:, 0]])
        assert len(np.unique(rows)) == 15
        assert (rows >= 1000).all() == (episode.info["hospital"] == 1)
        assert episode.support_x.dtype == np.float32 and episode.support_y.dtype == np.int32


def test_patient_tasks_refuse_too_many_patients():
    patients = {"a": (np.zeros((10, 13)), np.zeros(10, int))}
    with pytest.raises(ValueError, match="has only 10 patients"):
        hospitals.HospitalPatientTasks(patients, k_shot=5, n_query=10)


def test_training_patients_leave_the_new_hospital_out(heart):
    patients = hospitals.training_patients(heart, "switzerland")
    assert set(patients) == {"cleveland", "hungary", "long_beach"}
    pooled = np.concatenate([x for x, _ in patients.values()])
    np.testing.assert_allclose(pooled.mean(0), 0, atol=1e-5)  # standardised on exactly these


def test_local_only_with_one_class_predicts_its_rate():
    p = hospitals.local_only_probability(np.zeros((5, 13)), np.ones(5, int), np.zeros((3, 13)))
    np.testing.assert_array_equal(p, [1.0, 1.0, 1.0])


def test_accuracy_and_auc_of_a_constant_rule():
    accuracy, auc = hospitals.accuracy_and_auc(np.ones(4), np.array([1, 1, 1, 0]))
    assert (accuracy, auc) == (0.75, 0.5)


def test_disease_probability_matches_the_adapted_model():
    tf.keras.utils.set_random_seed(0)
    maml = hospitals.make_maml()
    x, y = np.random.default_rng(0).normal(size=(6, 13)).astype(np.float32), np.array([0, 1] * 3)
    unadapted = hospitals.disease_probability(maml, [], [], x)
    np.testing.assert_allclose(unadapted, tf.nn.softmax(maml.model(x))[:, 1], rtol=1e-6)
    adapted = hospitals.disease_probability(maml, x, y, x)
    expected = tf.nn.softmax(maml.forward(maml.adapt(x, y), x))[:, 1]
    np.testing.assert_allclose(adapted, expected, rtol=1e-5, atol=1e-6)


def test_draw_scores_and_rows(heart):
    tf.keras.utils.set_random_seed(0)
    maml, pooled = hospitals.make_maml(), hospitals.hospital_mlp()
    scores = hospitals.draw_scores(heart, "switzerland", maml, pooled, k_shots=(0, 5), n_draws=2)
    assert set(scores) == {("MAML", 0), ("MAML", 5), ("always disease", 0), ("pooled", 0),
                           ("pooled + fine-tuned", 5), ("local only", 5)}
    assert scores[("always disease", 0)][0, 1] == 0.5
    rows = hospitals.score_rows("switzerland", scores, 73)
    assert [r["method"] for r in rows][:2] == ["always disease", "pooled"]
    assert all(r["draws"] == 2 for r in rows)


# -- records, notebook-07 section -------------------------------------------------------------
def _base(name, **extra):
    return {"name": name, "algorithm": "maml", "paper": "p", "hyperparameters": {},
            "steps": 10, "planned_steps": 10, "finished": True, "seed": 0, "train_seconds": 1.0,
            "seconds_per_step": 0.1, "command": "c", "date": "d", "machine": {},
            "git_commit": None, **extra}


def _hospital_test(method, k_shot, accuracy):
    return {"method": method, "hospital": "hungary", "k_shot": k_shot, "accuracy": accuracy,
            "ci95": 1.0, "auc": 0.7, "auc_ci95": 0.01, "draws": 100, "n_test": 244}


def test_hospital_records_are_checked():
    record = _base("hospitals_maml_hungary", hospital="hungary", prevalence=0.36,
                   protocol="p", tests=[_hospital_test("MAML", 0, 70.0)], test={})
    assert records.check_record(record) is record
    del record["tests"][0]["auc"]
    with pytest.raises(records.RecordError, match="tests\\[0\\] lacks the field 'auc'"):
        records.check_record(record, "x.json")


def test_fashion_records_are_checked():
    record = _base("fashion_mnist_maml_5w1s", n_way=5, k_shot=1, test={}, tests=[
        {"method": "maml", "trained_on": "fashion_mnist", "n_way": 5, "k_shot": 1,
         "episodes": 600, "n_query": 15, "accuracy": "high", "ci95": 1.0, "protocol": "p"}])
    with pytest.raises(records.RecordError, match="'accuracy' must be a number"):
        records.check_record(record)


def test_hospital_rows_with_anchor():
    record = _base("hospitals_maml_hungary", hospital="hungary", prevalence=0.36, protocol="p",
                   test={}, tests=[_hospital_test("MAML", 0, 70.0),
                                   _hospital_test("MAML", 5, 75.0)],
                   anchor={"accuracy": 80.6, "ci95": 4.5, "auc": 0.85,
                           "published_accuracy": 77.0})
    rows = application_tables.hospital_rows([record])
    assert rows[0] == {"new hospital": "hungary", "method": "MAML", "K=0": "70.0 ± 1.0",
                       "K=5": "75.0 ± 1.0"}
    assert rows[1]["K=0"] == "80.6 ± 4.5 (published 77)" and rows[1]["K=5"] == ""
    assert application_tables.hospital_rows([record], "auc")[1]["K=0"] == "0.850"
    with pytest.raises(ValueError, match="metric must be"):
        application_tables.hospital_rows([record], "f1")


def test_fashion_rows_prefer_the_learner_trained_for_the_shot():
    def test(k_shot, accuracy):
        return {"method": "maml", "trained_on": "fashion_mnist", "n_way": 5, "k_shot": k_shot,
                "episodes": 600, "n_query": 15, "accuracy": accuracy, "ci95": 1.0,
                "protocol": "p"}
    one = _base("fashion_mnist_maml_5w1s", n_way=5, k_shot=1, test={},
                tests=[test(1, 60.0), test(5, 70.0)])
    five = _base("fashion_mnist_maml_5w5s", n_way=5, k_shot=5, test={},
                 tests=[test(1, 50.0), test(5, 80.0)])
    rows = application_tables.fashion_mnist_rows([one, five])
    assert rows[0]["5-way 1-shot"] == "60.0 ± 1.0 %" and rows[0]["5-way 5-shot"] == "80.0 ± 1.0 %"
    rows = application_tables.fashion_mnist_rows([one])  # no 5-shot learner: the 1-shot one stands in
    assert rows[0]["5-way 5-shot"] == "70.0 ± 1.0 % (1-shot learner)"


def test_episode_predictions_of_maml_and_of_a_logits_learner():
    tf.keras.utils.set_random_seed(0)
    maml = cross_domain.make_fashion_learner("maml", 1)
    rng = np.random.default_rng(0)
    episode = Episode(rng.random((5, 28, 28, 1), np.float32), np.arange(5, dtype=np.int32),
                      rng.random((10, 28, 28, 1), np.float32), np.repeat(np.arange(5), 2))
    predictions = cross_domain.episode_predictions(maml, episode)
    params = maml.adapt(tf.constant(episode.support_x), tf.constant(episode.support_y),
                        inner_steps=maml.eval_inner_steps)
    expected = np.argmax(maml.forward(params, tf.constant(episode.query_x)), -1)
    np.testing.assert_array_equal(predictions, expected)
    nearest = cross_domain.episode_predictions(cross_domain.PixelNearestNeighbour(), episode)
    assert nearest.shape == (10,)
