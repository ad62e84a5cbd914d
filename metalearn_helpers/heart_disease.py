"""UCI Heart Disease, four hospitals (Janosi, Steinbrunn, Pfisterer & Detrano 1988): find, verify
and read the processed files, encode the patients, and cut the hospitals into few-shot tasks.

Defined in notebook ``07_applications`` (tasks are hospitals: adapt a diagnosis model to a new
hospital from K labelled local patients).

Data: 920 patients referred for coronary angiography at four hospitals (Cleveland Clinic 303,
Hungarian Institute of Cardiology 294, University Hospitals Zurich and Basel 123, VA Medical
Center Long Beach 200), 13 clinical attributes plus the diagnosis ``num`` (0 = no disease, 1-4 =
disease). Licence CC BY 4.0. Citation: Janosi, A., Steinbrunn, W., Pfisterer, M., & Detrano, R.
(1988). Heart Disease [Dataset]. UCI Machine Learning Repository. doi:10.24432/C52P4X.

Where the four ``processed.*.data`` files are looked for, in order (see
:mod:`metalearn_helpers.downloads`): the ``root`` argument of :func:`load_heart_disease`, the
environment variable ``METALEARN_HEART_DISEASE_DIR``, the cache folder's ``heart-disease/``, else
a download from the UCI archive (:data:`OFFICIAL_BASE_URL`). Each file must match the sha256 of
UCI's file (``?`` for missing) or of the course's offline copy (the same values with ``NaN`` for
missing, see ``data/README.md``); anything else is refused.

Preprocessing (:meth:`HeartDisease.patients`, :func:`fit_standardiser`), decided once here:

- target: ``num > 0`` (more than 50 % narrowing of a major vessel), as in every published use;
- ``slope``, ``ca`` and ``thal`` are dropped: they are missing for 65 / 99 / 90 % of the
  Hungarian, 14 / 96 / 42 % of the Swiss and 51 / 99 / 83 % of the Long Beach patients;
- ``chol`` and ``trestbps`` of 0 mean missing (every Swiss ``chol``, 49 Long Beach ``chol``, one
  Long Beach ``trestbps``);
- ``cp`` (4 chest-pain types) and ``restecg`` (3 results) are one-hot coded against a reference
  level (typical angina, normal), giving the 13 columns of :data:`ENCODED_FEATURES`;
- every column is standardised with the mean and standard deviation of the *training
  hospitals'* patients only (never the target hospital's, not even its K labelled patients), and
  a missing value becomes 0, the training mean. There are no missing-value indicators: they would
  tell a model which hospital a patient comes from (Switzerland has no cholesterol at all).

Published anchor (Detrano et al. 1989, Am. J. Cardiology 64:304-310, quoted in UCI's
``heart-disease.names``): a logistic-regression-derived discriminant function fitted on Cleveland
and applied unchanged classified 77 % of the Hungarian, 79 % of the Long Beach and 81 % of the
Swiss patients correctly at a 0.5 probability threshold; :func:`detrano_anchor` repeats that
protocol on these files.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from pathlib import Path

import numpy as np

from .downloads import DataError, DataFiles, download_files, find_files

OFFICIAL_BASE_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/heart-disease/"
ENV_HEART_DISEASE_DIR = "METALEARN_HEART_DISEASE_DIR"

HOSPITALS = ("cleveland", "hungary", "switzerland", "long_beach")
HOSPITAL_NAMES = {
    "cleveland": "Cleveland Clinic Foundation",
    "hungary": "Hungarian Institute of Cardiology, Budapest",
    "switzerland": "University Hospitals Zurich and Basel",
    "long_beach": "V.A. Medical Center, Long Beach",
}
FILE_OF_HOSPITAL = {
    "cleveland": "processed.cleveland.data",
    "hungary": "processed.hungarian.data",
    "switzerland": "processed.switzerland.data",
    "long_beach": "processed.va.data",
}
EXPECTED_PATIENTS = {"cleveland": 303, "hungary": 294, "switzerland": 123, "long_beach": 200}
COLUMNS = ("age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang",
           "oldpeak", "slope", "ca", "thal", "num")
DROPPED_FEATURES = ("slope", "ca", "thal")
ZERO_MEANS_MISSING = ("trestbps", "chol")
CATEGORIES = {"cp": {1: "typical_angina", 2: "atypical_angina", 3: "non_anginal",
                     4: "asymptomatic"},
              "restecg": {0: "normal", 1: "st_t_abnormality", 2: "lv_hypertrophy"}}
ENCODED_FEATURES = tuple(  # the columns of HeartDisease.patients
    f"{name}_{label}" if name in CATEGORIES else name
    for name in COLUMNS[:-1] if name not in DROPPED_FEATURES
    for label in (list(CATEGORIES[name].values())[1:] if name in CATEGORIES else [None]))
K_SHOTS = (0, 5, 10, 20, 50)
DETRANO_1989_ACCURACY = {"hungary": 0.77, "long_beach": 0.79, "switzerland": 0.81}

# sha256 of UCI's files (`?` for missing; the offline copy with NaN written back as `?`, which
# matched independent copies of UCI's files) and of the course's offline copy (NaN for missing).
_UCI, _COPY = "UCI release", "course's offline copy (NaN for missing)"
ACCEPTED_CHECKSUMS = {
    "processed.cleveland.data": {"sha256": {
        "a74b7efa387bc9d108d7d0115d831fe9b414b29ae7124f331b622b4efa0427c8": _UCI,
        "0ad84ed1809abe7206420c0c45d77153fb82b85bbb20a2de3d34c6be1696915c": _COPY}},
    "processed.hungarian.data": {"sha256": {
        "d1ad108f785768cd3d7e82dc522e6f5a61eea93cccfb3a46ee8076f73fc3d796": _UCI,
        "b7e2781a582917c782f906d079efd9d8994fbbfaa8bd50cce0dbdfc529502551": _COPY}},
    "processed.switzerland.data": {"sha256": {
        "834a405ccf5b66ab4056bb77794adc8df0b7125186454c0a1d002d33c6c3b314": _UCI,
        "75fa4ed7943b891bc232fd36363c83a00d52c7cd3edaffae17ec99036d7021a5": _COPY}},
    "processed.va.data": {"sha256": {
        "e7c93d8d0d2acdadfa4c5e8de768e2191e7f618b952e29623f1f0d5949ff6b8f": _UCI,
        "9a439dc875370c855c1b9c4f8f53f07a4356534f309648948d4f5d0425b5b0c4": _COPY}},
}


class HeartDiseaseError(DataError):
    """The heart-disease files could not be found, verified or read."""


HEART_DISEASE_FILES = DataFiles(
    name="UCI Heart Disease", kind="a UCI Heart Disease file", checksums=ACCEPTED_CHECKSUMS,
    env_var=ENV_HEART_DISEASE_DIR, subdir="heart-disease", base_url=OFFICIAL_BASE_URL,
    origin="the UCI archive, https://archive.ics.uci.edu/dataset/45/heart+disease",
    error=HeartDiseaseError,
)


def check_hospital(hospital: str) -> str:
    """Return ``hospital`` if it is one of :data:`HOSPITALS`, else raise ``ValueError``."""
    if hospital not in HOSPITALS:
        raise ValueError(f"unknown hospital {hospital!r}; expected one of {HOSPITALS}.")
    return hospital


@dataclasses.dataclass(frozen=True)
class HeartDisease:
    """The four hospitals' patients as in the files.

    Attributes:
        records: ``{hospital: float64 array (n_patients, 14)}``, columns :data:`COLUMNS`,
            NaN where the file says ``?`` (or ``NaN``); values untouched.
    """

    records: dict

    def patients(self, hospital: str) -> tuple[np.ndarray, np.ndarray]:
        """``(features, labels)`` of one hospital: float64 ``(n, 13)`` columns
        :data:`ENCODED_FEATURES` in their own units, NaN = missing (see the module docstring),
        and int64 ``num > 0``. Standardise with :func:`fit_standardiser`."""
        records = self.records[check_hospital(hospital)].copy()
        for name in ZERO_MEANS_MISSING:
            column = records[:, COLUMNS.index(name)]
            column[column == 0] = np.nan
        columns = []
        for name in COLUMNS[:-1]:
            if name in DROPPED_FEATURES:
                continue
            values = records[:, COLUMNS.index(name)]
            if name in CATEGORIES:  # one-hot, first level is the reference
                columns += [np.where(np.isnan(values), np.nan, values == level)
                            for level in list(CATEGORIES[name])[1:]]
            else:
                columns.append(values)
        return np.stack(columns, axis=1), (records[:, -1] > 0).astype(np.int64)

    def counts(self) -> dict[str, int]:
        return {h: len(self.records[h]) for h in HOSPITALS}

    def prevalence(self) -> dict[str, float]:
        """Fraction of patients with disease (``num > 0``) at each hospital."""
        return {h: float(np.mean(self.records[h][:, -1] > 0)) for h in HOSPITALS}

    def missing_fraction(self, hospital: str) -> dict[str, float]:
        """Fraction of missing values of each attribute (0 counted as missing for
        :data:`ZERO_MEANS_MISSING`)."""
        records = self.records[check_hospital(hospital)]
        out = {}
        for i, name in enumerate(COLUMNS[:-1]):
            missing = np.isnan(records[:, i])
            if name in ZERO_MEANS_MISSING:
                missing |= records[:, i] == 0
            out[name] = float(missing.mean())
        return out

    def summary(self) -> str:
        lines = [f"{h:>11}: {n:3d} patients, {100 * p:4.1f} % with disease"
                 for (h, n), p in zip(self.counts().items(), self.prevalence().values())]
        lines.append(f"{'total':>11}: {sum(self.counts().values())} patients")
        return "\n".join(lines)


def download_heart_disease(dest: str | os.PathLike, base_url: str = OFFICIAL_BASE_URL) -> Path:
    """Download the four files from ``base_url`` into ``dest``, verifying each."""
    return download_files(HEART_DISEASE_FILES, dest, base_url)


def find_heart_disease(root: str | os.PathLike | None = None,
                       cache: str | os.PathLike | None = None,
                       download: bool = True) -> dict[str, Path]:
    """Locate (or download) and verify the four files; see the module docstring."""
    return find_files(HEART_DISEASE_FILES, root, cache, download, fetch=download_heart_disease)


def read_records(path: str | os.PathLike) -> np.ndarray:
    """Read one ``processed.*.data`` file: 14 comma-separated numbers a line, ``?`` or ``NaN``
    for missing. Returns float64 ``(n_patients, 14)``."""
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        try:
            if len(fields) != len(COLUMNS):
                raise ValueError(f"{len(fields)} fields instead of {len(COLUMNS)}")
            rows.append([np.nan if f in ("?", "NaN") else float(f) for f in fields])
        except ValueError as error:
            raise HeartDiseaseError(f"{path}, line {number}: {error}.") from error
    return np.array(rows, dtype=np.float64).reshape(-1, len(COLUMNS))


def load_heart_disease(root: str | os.PathLike | None = None,
                       cache: str | os.PathLike | None = None,
                       download: bool = True, verbose: bool = True) -> HeartDisease:
    """Load the four hospitals (303 / 294 / 123 / 200 patients).

    Args:
        root: folder holding the four ``processed.*.data`` files (default:
            ``$METALEARN_HEART_DISEASE_DIR``, then the cache folder, then a download).
        cache: the cache folder (default :func:`metalearn_helpers.downloads.cache_dir`); files
            are looked for and downloaded in its ``heart-disease/``.
        download: allow downloading from the UCI archive if the files are nowhere.
        verbose: print patients and prevalence per hospital.
    """
    paths = find_heart_disease(root, cache, download)
    records = {h: read_records(paths[FILE_OF_HOSPITAL[h]]) for h in HOSPITALS}
    for hospital, want in EXPECTED_PATIENTS.items():
        if len(records[hospital]) != want:
            raise HeartDiseaseError(f"{FILE_OF_HOSPITAL[hospital]} holds "
                                    f"{len(records[hospital])} patients, expected {want}.")
    data = HeartDisease(records)
    if verbose:
        print(data.summary())
    return data


@dataclasses.dataclass(frozen=True)
class Standardiser:
    """Per-column ``(x - mean) / std`` fitted on some hospitals; missing values become 0."""

    mean: np.ndarray
    std: np.ndarray
    hospitals: tuple

    def __call__(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.std
        return np.nan_to_num(z, nan=0.0).astype(np.float32)


def fit_standardiser(data: HeartDisease, hospitals) -> Standardiser:
    """Means and standard deviations of :meth:`HeartDisease.patients` features over the patients
    of ``hospitals`` (missing values ignored; a column with no value or no spread there gets mean
    0 and scale 1)."""
    hospitals = tuple(check_hospital(h) for h in hospitals)
    if not hospitals:
        raise ValueError("fit_standardiser needs at least one hospital.")
    features = np.concatenate([data.patients(h)[0] for h in hospitals])
    observed = ~np.isnan(features)
    count = observed.sum(axis=0)
    mean = np.where(count > 0, np.nansum(features, axis=0) / np.maximum(count, 1), 0.0)
    var = np.nansum((features - mean) ** 2, axis=0) / np.maximum(count, 1)
    std = np.where(var > 0, np.sqrt(var), 1.0)
    return Standardiser(mean, std, hospitals)


def leave_one_hospital_out(hospital: str) -> tuple[str, ...]:
    """The training hospitals when ``hospital`` is the new one: the other three."""
    check_hospital(hospital)
    return tuple(h for h in HOSPITALS if h != hospital)


def draw_local_patients(labels: np.ndarray, k_shot: int, n_test: int,
                        seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_test`` test patients and ``k_shot`` labelled patients of one hospital.

    The test set is stratified (its prevalence is the hospital's, rounded), so its ROC AUC is
    always defined; the ``k_shot`` labelled patients are a uniform draw from the others, as a
    hospital would label whoever comes. For one seed the test set does not depend on
    ``k_shot`` and the labelled sets are nested (K = 5 is part of K = 10), so results across K
    are paired. Returns ``(support_index, test_index)`` into the hospital's patients.
    """
    labels = np.asarray(labels)
    n = len(labels)
    for name, value in (("k_shot", k_shot), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}.")
    if not 1 <= n_test <= n:
        raise ValueError(f"n_test={n_test}, but the hospital has {n} patients; need "
                         f"1 <= n_test <= {n}.")
    if k_shot > n - n_test:
        raise ValueError(
            f"k_shot={k_shot} is more than the {n - n_test} patients left for labelling: the "
            f"hospital has {n} patients and {n_test} of them are the test set.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    positives, negatives = rng.permutation(np.flatnonzero(labels)), rng.permutation(
        np.flatnonzero(labels == 0))
    n_test_pos = min(round(n_test * len(positives) / n), len(positives))
    n_test_pos = max(n_test_pos, n_test - len(negatives))
    test = np.concatenate([positives[:n_test_pos], negatives[:n_test - n_test_pos]])
    rest = rng.permutation(np.concatenate([positives[n_test_pos:],
                                           negatives[n_test - n_test_pos:]]))
    return rest[:k_shot], np.sort(test)


@dataclasses.dataclass(frozen=True)
class HospitalTask:
    """One task of the leave-one-hospital-out protocol: the training hospitals' patients, K
    labelled patients of the new hospital and its test patients, all standardised with the
    training hospitals' statistics (float32 features, int64 labels)."""

    hospital: str
    train_hospitals: tuple
    train_x: np.ndarray
    train_y: np.ndarray
    support_x: np.ndarray
    support_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    support_index: np.ndarray
    test_index: np.ndarray


def hospital_task(data: HeartDisease, hospital: str, k_shot: int, seed=None,
                  n_test: int | None = None) -> HospitalTask:
    """Leave ``hospital`` out: train on the other three, adapt on ``k_shot`` labelled local
    patients, test on ``n_test`` others (default: the hospital's patients minus the largest of
    :data:`K_SHOTS`, so every K in the protocol is scored on test sets of one size: Cleveland
    253, Hungary 244, Switzerland 73, Long Beach 150). See :func:`draw_local_patients`."""
    train_hospitals = leave_one_hospital_out(hospital)
    local_x, local_y = data.patients(hospital)
    if n_test is None:
        n_test = len(local_y) - max(K_SHOTS)
    support, test = draw_local_patients(local_y, k_shot, n_test, seed)
    standardise = fit_standardiser(data, train_hospitals)
    train = [data.patients(h) for h in train_hospitals]
    return HospitalTask(
        hospital=hospital, train_hospitals=train_hospitals,
        train_x=standardise(np.concatenate([x for x, _ in train])),
        train_y=np.concatenate([y for _, y in train]),
        support_x=standardise(local_x[support]), support_y=local_y[support],
        test_x=standardise(local_x[test]), test_y=local_y[test],
        support_index=support, test_index=test,
    )


@dataclasses.dataclass(frozen=True)
class AnchorRow:
    """One hospital of :func:`detrano_anchor`: ``accuracy`` with its 95 % CI over patients,
    ROC AUC, the published accuracy, patients and prevalence."""

    hospital: str
    accuracy: object  # metalearn_helpers.evaluation.ScoreWithCI
    auc: float
    published_accuracy: float
    n_patients: int
    prevalence: float

    def __str__(self) -> str:
        return (f"{self.hospital:>11}: accuracy {100 * self.accuracy.mean:.1f} ± "
                f"{100 * self.accuracy.ci95:.1f} % (published "
                f"{100 * self.published_accuracy:.0f} %), ROC AUC {self.auc:.3f}, "
                f"{self.n_patients} patients, prevalence {100 * self.prevalence:.0f} %")


def detrano_anchor(data: HeartDisease, threshold: float = 0.5) -> dict[str, AnchorRow]:
    """Repeat Detrano et al. (1989)'s protocol: fit a logistic-regression discriminant function
    on all 303 Cleveland patients (unpenalised, the 13 encoded features standardised with
    Cleveland's statistics), apply it unchanged to every patient of the other hospitals and
    call disease when the probability exceeds ``threshold``.

    The paper's cohorts and variables differ from these files (its model also used thallium
    scintigraphy and fluoroscopy, missing here outside Cleveland; it had 425 Hungarian and 143
    Swiss patients), so the protocol is reproduced, not the exact numbers. The accuracy's 95 %
    CI is ``1.96 s / sqrt(n)`` over the patients (``evaluation.mean_confidence_interval``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from .evaluation import mean_confidence_interval

    standardise = fit_standardiser(data, ("cleveland",))
    x, y = data.patients("cleveland")
    model = LogisticRegression(C=np.inf, max_iter=1000).fit(standardise(x), y)
    rows = {}
    for hospital, published in DETRANO_1989_ACCURACY.items():
        x, y = data.patients(hospital)
        probability = model.predict_proba(standardise(x))[:, 1]
        rows[hospital] = AnchorRow(
            hospital=hospital,
            accuracy=mean_confidence_interval(((probability > threshold) == y).astype(float)),
            auc=float(roc_auc_score(y, probability)), published_accuracy=published,
            n_patients=len(y), prevalence=float(y.mean()))
    return rows
