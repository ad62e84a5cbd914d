"""Leave one hospital out: meta-train MAML on the other three hospitals of UCI Heart Disease,
score it and the alternatives on the new hospital's patients for K in (0, 5, 10, 20, 50)
labelled local patients, and export ``weights/hospitals_maml_<hospital>.{npz,json}``.

    python scripts/train_hospitals.py                    # all four hospitals, a few minutes
    python scripts/train_hospitals.py --hospital switzerland

The ``.npz`` holds MAML's meta-learned initialisation; ``hospitals_pooled_<hospital>.npz`` the
pooled MLP. The record's ``tests`` hold accuracy (%) and ROC AUC, mean and 95 % CI over
``n_draws`` draws of labelled and test patients, for every method of
:mod:`metalearn_helpers.hospitals`; ``anchor`` holds Detrano et al.'s protocol (logistic
regression fitted on Cleveland, applied unchanged) repeated on these files.
"""

from __future__ import annotations

import argparse
import os
import sys


def run_hospital(args, data, hospital: str, command: str) -> None:
    from metalearn_helpers import heart_disease, hospitals, papers, records

    name = f"hospitals_maml_{hospital}"
    settings = papers.HOSPITAL_SETTINGS
    maml, history = hospitals.train_maml(data, hospital, args.n_steps, seed=args.seed)
    pooled = hospitals.fit_pooled(data, hospital, seed=args.seed)
    n_test = heart_disease.EXPECTED_PATIENTS[hospital] - max(heart_disease.K_SHOTS)
    scores = hospitals.draw_scores(data, hospital, maml, pooled, n_draws=args.draws)
    rows = hospitals.score_rows(hospital, scores, n_test)
    for row in rows:
        print(f"{hospital:>11} {row['method']:>20} K={row['k_shot']:2d}: accuracy "
              f"{row['accuracy']:.1f} ± {row['ci95']:.1f} %, AUC {row['auc']:.3f} ± "
              f"{row['auc_ci95']:.3f}", flush=True)
    anchor = heart_disease.detrano_anchor(data).get(hospital)
    records.save_weights(maml, records.WEIGHTS_DIR / f"{name}.npz")
    records.save_weights(hospitals.make_maml(pooled),
                         records.WEIGHTS_DIR / f"hospitals_pooled_{hospital}.npz")
    history.save(records.WEIGHTS_DIR / f"{name}.history.json")
    records.write_record(records.WEIGHTS_DIR / f"{name}.json", {
        "name": name, "algorithm": "maml", "paper": "MAML, Finn et al. 2017 (arXiv 1703.03400)",
        "hospital": hospital, "train_hospitals": list(heart_disease.leave_one_hospital_out(hospital)),
        "prevalence": data.prevalence()[hospital],
        "hyperparameters": {k: (list(v) if isinstance(v, tuple) else v)
                            for k, v in settings.items()},
        "steps": history.step, "planned_steps": args.n_steps,
        "finished": history.step >= args.n_steps, "seed": args.seed,
        "test": rows[0], "tests": rows,
        "anchor": None if anchor is None else {
            "accuracy": 100 * anchor.accuracy.mean, "ci95": 100 * anchor.accuracy.ci95,
            "auc": anchor.auc, "n_patients": anchor.n_patients,
            "published_accuracy": 100 * anchor.published_accuracy,
            "protocol": "logistic regression fitted on all 303 Cleveland patients (13 encoded "
                        "features), applied unchanged to every patient, threshold 0.5",
            "source": "Detrano et al. 1989 (Am. J. Cardiology 64:304-310), as quoted in UCI's "
                      "heart-disease.names"},
        "protocol": "leave one hospital out; " + hospitals.PROTOCOL,
        "train_seconds": history.elapsed, "seconds_per_step": history.elapsed / max(history.step, 1),
        "command": command,
    })


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hospital", default=None, help="one hospital (default: all four)")
    parser.add_argument("--n-steps", type=int, default=None, help="MAML meta-steps")
    parser.add_argument("--draws", type=int, default=None, help="draws of the K patients")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import tensorflow  # noqa: F401  (first: the helpers then leave TensorFlow unstarted)

    from metalearn_helpers.distributed import configure_cpu_threads

    configure_cpu_threads(int(os.environ.get("TF_NUM_INTRAOP_THREADS", 1)),  # CPU only
                          int(os.environ.get("TF_NUM_INTEROP_THREADS", 1)))
    from metalearn_helpers import heart_disease, papers

    args.n_steps = args.n_steps or papers.HOSPITAL_SETTINGS["n_steps"]
    args.draws = args.draws or papers.HOSPITAL_SETTINGS["n_draws"]
    data = heart_disease.load_heart_disease()
    command = "python scripts/train_hospitals.py " + " ".join(argv or sys.argv[1:])
    for hospital in ([heart_disease.check_hospital(args.hospital)] if args.hospital
                     else heart_disease.HOSPITALS):
        run_hospital(args, data, hospital, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
