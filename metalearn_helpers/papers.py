"""Every paper setting and published result the course compares with, as plain data.

Numbers and strings only (no classes, no functions): the experiment modules read them
(:mod:`metalearn_helpers.experiments` for Omniglot, :mod:`metalearn_helpers.sinusoid` for MAML's
regression) and :mod:`metalearn_helpers.records` compares run records with them. Each entry says
which paper, and where in it, the number comes from; :data:`RESULT_SOURCES` names the table of
every published Omniglot number. Add a paper's number here, next to its citation.
"""

from __future__ import annotations

# Hyperparameters of each paper's Omniglot experiments. ``learner`` names the class that
# implements the algorithm (``experiments.LEARNERS``); ``network`` holds the arguments of
# :func:`metalearn_helpers.models.conv4` (``head``: whether it ends in an ``n_way`` classifier;
# default ``dict(head=True)``: MAML's stride-2 Conv-4), or ``None`` for a learner that builds its
# own network. Episodic training uses ``train_way``
# classes (default: the test way) and ``train_shots`` drawings per class, support included
# (default ``2 * k_shot``: as many query drawings as support drawings, as MAML's code does), or
# ``train_query`` query drawings per class. Test accuracy is reported for ``test_ways``
# (default: the way trained). Model-based learners (notebook 06) add: ``k_shots``, the shots the
# setting is defined for (the first is the default), ``shot_kwargs``, constructor arguments that
# depend on the shot, ``network=None`` (the learner is built from ``(n_way,
# n_instances=k_shot)``), ``val_query``, query drawings per class of the validation
# episodes (default ``k_shot``), and ``evaluation="by_instance"`` for sequence learners scored on
# the k-th presentation of a class (``experiments.evaluate_by_instance``) instead of on 15 queries.
# ``paper_test_query`` (MAML family): the query drawings per class of the paper code's test
# episodes, a number or ``"k_shot"`` (see ``experiments.paper_test_query``). With transductive batch norm
# the test batch's size matters. MAML's code samples ``2K`` drawings per class for its Omniglot
# test episodes as for training (``DataGenerator(update_batch_size*2, ...)``), so it scores K
# queries per class, the shape the network was trained on; Reptile's code scores one query per
# class whatever the shot (``num_shots + 1`` drawings). The course's 15 queries per class (75
# drawings normalised together) cost the finished first-order MAML 1-shot run 2.3 points
# (96.29 vs 98.60 %). Records hold both tests.
# ``train_split`` (Vinyals' protocol): the characters training episodes come from, ``"train"``
# (default, the 1,028 of Vinyals' split, validation on the other 172) or ``"trainval"`` (all
# 1,200, no validation), as the paper code's final model was trained.
OMNIGLOT_SETTINGS = {
    "maml": dict(  # Finn et al. 2017, arXiv 1703.03400, section 5.2 and appendix A.1
        paper="MAML, Finn et al. 2017 (arXiv 1703.03400)", learner="maml",
        kwargs=dict(inner_lr=0.4, inner_steps=1, eval_inner_steps=3, first_order=False),
        meta_lr=1e-3, meta_batch_size=32, n_steps=60_000, train_shots=None,
        paper_test_query="k_shot"),
    "fomaml": dict(  # the same, first-order approximation (section 5.2)
        # Omniglot numbers for first-order MAML: Nichol et al. 2018 (arXiv 1803.02999), Table 1
        paper="first-order MAML, Finn et al. 2017 (arXiv 1703.03400); Omniglot results from "
              "Nichol et al. 2018 (arXiv 1803.02999)", learner="maml",
        kwargs=dict(inner_lr=0.4, inner_steps=1, eval_inner_steps=3, first_order=True),
        meta_lr=1e-3, meta_batch_size=32, n_steps=60_000, train_shots=None,
        paper_test_query="k_shot"),
    "metasgd": dict(  # Li et al. 2017, arXiv 1707.09835; one inner step, alpha learned
        paper="Meta-SGD, Li et al. 2017 (arXiv 1707.09835)", learner="metasgd",
        kwargs=dict(inner_lr=0.4, inner_steps=1, eval_inner_steps=1),
        meta_lr=1e-3, meta_batch_size=32, n_steps=60_000, train_shots=None,
        paper_test_query="k_shot"),
    # Raghu et al. 2019, arXiv 1909.09157: MAML whose inner loop adapts the head only. The paper
    # reports Omniglot at 20 ways only (Table 2) and uses "the same model architectures as the
    # original MAML authors" (section 4); its appendix C.4 (hyperparameters) was not available
    # offline, so these are MAML's 20-way Omniglot settings (Finn et al. 2017, appendix A.1:
    # 5 inner steps of 0.1 in training and test, meta-batch 16), 20-way episodes. Test episodes
    # with K queries per class as MAML's code (assumed for ANIL's code, not checked).
    "anil": dict(
        paper="ANIL, Raghu et al. 2019 (arXiv 1909.09157)", learner="anil",
        kwargs=dict(inner_lr=0.1, inner_steps=5, eval_inner_steps=5, first_order=False),
        meta_lr=1e-3, meta_batch_size=16, n_steps=60_000, train_shots=None, train_way=20,
        test_ways=(20,), paper_test_query="k_shot"),
    "reptile": dict(  # Nichol et al. 2018, arXiv 1803.02999, appendix A (Omniglot)
        paper="Reptile, Nichol et al. 2018 (arXiv 1803.02999)", learner="reptile",
        kwargs=dict(inner_lr=1e-3, inner_steps=5, inner_batch_size=10, eval_inner_steps=50,
                    meta_lr_final=0.0),
        meta_lr=1.0, meta_batch_size=5, n_steps=100_000, train_shots=10,
        paper_test_query=1),
    # Snell et al. 2017, arXiv 1703.05175, section 3.1: 60-way training episodes with 5 queries
    # per class and the test shot, Adam 1e-3 halved every 2,000 episodes, one model per shot
    # evaluated at 5 and 20 ways. The paper's code (jakesnell/prototypical-networks) trains on
    # the 1,028 training characters until the validation loss has not improved for 200 epochs of
    # 100 episodes, then trains its final model on all 1,200 (train + validation) for the best
    # epoch count plus those 200 epochs (at least 20,000 episodes). We train on the 1,200 for
    # 20,000 episodes: by then the learning rate is 1/1024 of its start.
    "protonet": dict(
        paper="Prototypical Networks, Snell et al. 2017 (arXiv 1703.05175)", learner="protonet",
        network=dict(head=False, downsample="maxpool", norm="running"),
        kwargs=dict(halve_every=2000), meta_lr=1e-3,
        meta_batch_size=1, n_steps=20_000, train_shots=None, train_query=5, train_way=60,
        test_ways=(5, 20), train_split="trainval"),
    # Vinyals et al. 2016, arXiv 1606.04080: Omniglot results with cosine attention and no
    # full-context embeddings. The paper trains one model per test setting and gives no
    # optimiser; we train one model per shot with 20-way episodes (5 queries per class) and
    # ProtoNet's schedule, and evaluate it at 5 and 20 ways, to halve the CPU time.
    "matching": dict(
        paper="Matching Networks, Vinyals et al. 2016 (arXiv 1606.04080)", learner="matching",
        network=dict(head=False, downsample="maxpool", norm="running"),
        kwargs=dict(fce=False, halve_every=2000), meta_lr=1e-3,
        meta_batch_size=1, n_steps=20_000, train_shots=None, train_query=5, train_way=20,
        test_ways=(5, 20)),
    # Chen et al. 2019, arXiv 1904.04232 (their code's Omniglot setting): pre-train a classifier
    # over all training classes (with rotations) in mini-batches of 16 with Adam 1e-3 for 5
    # epochs, then adapt on each test episode's support set only. One model serves every test
    # setting; it is scored with both adaptations (nearest class mean, fine-tuned linear head).
    "baseline": dict(
        paper="Baseline, Chen et al. 2019 (arXiv 1904.04232)", learner="baseline",
        network=dict(head=False, downsample="maxpool", norm="running"),
        kwargs=dict(adaptation="linear"), meta_lr=1e-3,
        meta_batch_size=1, n_steps=25_700, batch_size=16, test_ways=(5, 20),
        test_shots=(1, 5), test_adaptations=("centroid", "linear")),
    # Ravi & Larochelle 2017 (ICLR, OpenReview rJY0-Kcll), the authors' Omniglot-like config as
    # reported by the module's author (the paper itself reports miniImageNet only): 12 updates
    # for 1-shot and 8 for 5-shot on the whole support set, 15 queries per class in training,
    # one episode per meta-update, Adam 1e-3, meta-gradient clipped to norm 0.25, 50,000 steps.
    # Learner: MAML's Omniglot Conv-4 (stride 2, BatchStatNorm: every batch normalised by its own
    # statistics in meta-training and meta-testing alike, so no information is carried from one
    # task to the next, the concern of the paper's section 3.3) at the paper's width of 32
    # filters. The coordinate-wise meta-learner runs its LSTM on every learner parameter, so its
    # cost grows with their number: 28,485 parameters with 32 filters against 112,261 with MAML's
    # 64, measured 0.49 against 2.02 s per meta-step on the 2-core CPU (50,000 steps: 7 h vs 28 h).
    "metalstm": dict(
        paper="Meta-Learner LSTM, Ravi & Larochelle 2017 (ICLR, OpenReview rJY0-Kcll)",
        learner="metalstm", network=dict(head=True, filters=32),
        kwargs=dict(hidden_size=20, clipnorm=0.25),
        k_shots=(1, 5), shot_kwargs={1: dict(inner_steps=12), 5: dict(inner_steps=8)},
        meta_lr=1e-3, meta_batch_size=1, n_steps=50_000, train_shots=None, train_query=15),
    # Santoro et al. 2016 (arXiv 1605.06065), section 4.1 and Table 1: sequences of 5 classes x 10
    # instances (``k_shot=10, n_query=0``), meta-batch 16, the module's defaults (20x20 input,
    # LSTM 200, memory 128x40, 4 read heads, gamma 0.95). Optimiser: Adam 1e-3, as in the public
    # reimplementations; our first runs used RMSprop 1e-4 for 6,250 steps (100,000 episodes, read
    # off the axis of the paper's Figure 2) and both the MANN and the LSTM stayed on the
    # label-elimination plateau (about 31 % at the 2nd presentation) throughout, whereas a probe
    # with Adam 1e-3 left it after about 3,500 steps. 20,000 steps = 320,000 episodes.
    "mann": dict(
        paper="MANN, Santoro et al. 2016 (arXiv 1605.06065)", learner="mann",
        network=None, kwargs=dict(image_size=20, controller_units=200, memory_slots=128,
                                memory_width=40, read_heads=4, gamma=0.95),
        k_shots=(10,), meta_lr=1e-3, meta_batch_size=16, n_steps=20_000, train_shots=None,
        train_query=0, val_query=0, evaluation="by_instance"),
    # The same MANN whose heads write a separate add vector instead of their key (the NTM's add
    # vector, Graves et al. 2014, arXiv 1410.5401, as in public reimplementations): the "mann"
    # run learned to ignore its memory (ablating its reads costs nothing), this one relies on it
    # (the ablation costs 26 points at the 10th presentation, 600 episodes). Otherwise identical.
    "mann_add": dict(
        paper="MANN, Santoro et al. 2016 (arXiv 1605.06065), heads writing add vectors",
        learner="mann", network=None,
        kwargs=dict(image_size=20, controller_units=200, memory_slots=128, memory_width=40,
                    read_heads=4, gamma=0.95, write="add"),
        k_shots=(10,), meta_lr=1e-3, meta_batch_size=16, n_steps=20_000, train_shots=None,
        train_query=0, val_query=0, evaluation="by_instance"),
    # The same paper's LSTM baseline: the same controller and sequences, no external memory.
    "lstm": dict(
        paper="LSTM baseline of Santoro et al. 2016 (arXiv 1605.06065)",
        learner="mann", network=None,
        kwargs=dict(image_size=20, controller_units=200, memory=False),
        k_shots=(10,), meta_lr=1e-3, meta_batch_size=16, n_steps=20_000, train_shots=None,
        train_query=0, val_query=0, evaluation="by_instance"),
}

# Classes of the baseline's pre-training: the training characters of each protocol x 4 rotations.
TRAINING_CLASSES = {"vinyals": 1028 * 4, "lake": 964 * 4}

# Published Omniglot accuracies (%), with their 95 % CI where reported, by (algorithm, n_way,
# k_shot).
OMNIGLOT_RESULTS = {
    ("maml", 5, 1): (98.7, 0.4), ("maml", 5, 5): (99.9, 0.1),
    ("maml", 20, 1): (95.8, 0.3), ("maml", 20, 5): (98.9, 0.2),
    ("fomaml", 5, 1): (98.3, 0.5), ("fomaml", 5, 5): (99.2, 0.2),
    ("reptile", 5, 1): (95.39, 0.09), ("reptile", 5, 5): (98.90, 0.10),
    ("metasgd", 5, 1): (99.53, 0.26), ("metasgd", 5, 5): (99.93, 0.09),
    ("protonet", 5, 1): (98.8, None), ("protonet", 5, 5): (99.7, None),
    ("protonet", 20, 1): (96.0, None), ("protonet", 20, 5): (98.9, None),
    ("matching", 5, 1): (98.1, None), ("matching", 5, 5): (98.9, None),
    ("matching", 20, 1): (93.8, None), ("matching", 20, 5): (98.5, None),
    # ANIL's "± 0.5" and "± 0.3" are standard deviations over three training seeds, not CIs.
    ("anil", 20, 1): (96.2, None), ("anil", 20, 5): (98.0, None),
}

# Reptile's paper reports its Omniglot numbers twice (Nichol et al. 2018, Table 1): without
# transduction (above, each query drawing normalised with the support set) and with it (below,
# the query drawings normalised together). The course's tests are transductive, like MAML's
# code, so these are Reptile's comparable numbers; MAML's and first-order MAML's above already are.
OMNIGLOT_RESULTS_TRANSDUCTIVE = {("reptile", 5, 1): (97.68, 0.04), ("reptile", 5, 5): (99.48, 0.06)}

# Published accuracies (%) on another dataset than Omniglot, kept apart from OMNIGLOT_RESULTS: the
# Meta-Learner LSTM paper (Ravi & Larochelle 2017, Table 1) reports miniImageNet only, 5-way.
MINIIMAGENET_RESULTS = {("metalstm", 5, 1): (43.44, 0.77), ("metalstm", 5, 5): (60.60, 0.71)}

# Presentations scored for sequence learners (``evaluation="by_instance"``): every column of
# Santoro et al.'s Table 1 (the module's PAPER_INSTANCES plus the 4th).
INSTANCES = (1, 2, 3, 4, 5, 10)

# Santoro et al. 2016, Table 1 (Omniglot, 5 classes per episode, one-hot labels): accuracy (%) at
# the k-th presentation of a class, columns 1st, 2nd, 3rd, 4th, 5th, 10th. No confidence
# intervals reported. No copy of the paper is stored here: these values were first written from
# memory, then checked against three independent course notes quoting the table, which agree with
# them and with each other (2026-11-27).
RESULTS_BY_INSTANCE = {
    "mann": {1: 36.4, 2: 82.8, 3: 91.0, 4: 92.6, 5: 94.9, 10: 98.1},
    "mann_add": {1: 36.4, 2: 82.8, 3: 91.0, 4: 92.6, 5: 94.9, 10: 98.1},  # the same MANN row
    "lstm": {1: 24.4, 2: 49.5, 3: 55.3, 4: 61.0, 5: 63.6, 10: 62.5},
}
# The same table's human row: people shown the same kind of sequences (Santoro et al. 2016).
HUMAN_RESULTS_BY_INSTANCE = {1: 34.5, 2: 57.3, 3: 70.1, 4: 71.8, 5: 81.4, 10: 92.4}
RESULTS_BY_INSTANCE_SOURCE = ("Santoro et al. 2016 (arXiv 1605.06065), Table 1, as quoted "
                                    "by secondary sources (the PDF was not available offline)")




# The two evaluation protocols of the Omniglot literature, as stated next to every number.
PROTOCOLS = {
    "vinyals": "Vinyals split (1,028 training, 172 validation, 423 test characters), every "
               "character in 4 rotations as separate classes, 28x28",
    "lake": "Lake split (train on the 30 background alphabets, with 4 rotations as extra "
            "classes; test within one of the 20 evaluation alphabets, no rotations), 28x28",
}

# Lake et al.'s 400 official one-shot trials (20 runs of 20-way 1-shot within one of 10
# evaluation alphabets; ``python/one-shot-classification/all_runs.zip`` of brendenlake/omniglot,
# :mod:`metalearn_helpers.lake_trials`): published error rates (%) on exactly these trials. Koch
# et al.'s table of one-shot results gives accuracies: humans 95.5 and hierarchical Bayesian
# program learning 95.2 (both from Lake, Salakhutdinov & Tenenbaum 2013, NIPS), their
# convolutional Siamese net 92.0; Lake et al. 2015 report people 4.5 % and BPL 3.3 % errors.
LAKE_2015 = "Lake, Salakhutdinov & Tenenbaum 2015, Science 350:1332, one-shot classification"
LAKE_TRIALS_ERRORS = [
    {"method": "people", "error": 4.5, "source": LAKE_2015},
    {"method": "Bayesian program learning (BPL)", "error": 3.3, "source": LAKE_2015},
    {"method": "convolutional Siamese net", "error": 8.0,
     "source": "Koch, Zemel & Salakhutdinov 2015, ICML Deep Learning Workshop, Table 2 "
               "(92.0 % accuracy)"},
]

# Where each published Omniglot number above comes from.
RESULT_SOURCES = {
    "maml": "Finn et al. 2017 (arXiv 1703.03400), Table 1",
    "fomaml": "Nichol et al. 2018 (arXiv 1803.02999), Table 1 (first-order MAML)",
    "metasgd": "Li et al. 2017 (arXiv 1707.09835), Table 1",
    "reptile": "Nichol et al. 2018 (arXiv 1803.02999), Table 1 (with and without transduction)",
    "protonet": "Snell et al. 2017 (arXiv 1703.05175), Table 1",
    "matching": "Vinyals et al. 2016 (arXiv 1606.04080), Table 1 (cosine attention, no FCE)",
    "metalstm": "Ravi & Larochelle 2017 (ICLR), Table 1 (miniImageNet)",
    "anil": "Raghu et al. 2019 (arXiv 1909.09157, ICLR 2020), Table 2 (section 4): 96.2 ± 0.5 "
            "(20-way 1-shot) and 98.0 ± 0.3 (20-way 5-shot), mean ± standard deviation over 3 "
            "seeds; its MAML row: 93.7 ± 0.7 and 96.4 ± 0.1",
}

# MAML's sinusoid regression (Finn et al. 2017, arXiv 1703.03400, section 5.1): tasks
# y = A sin(x - phase), A ~ U[0.1, 5], phase ~ U[0, pi], x ~ U[-5, 5]; a 1-40-40-1 ReLU network;
# K = 10 support and 10 query points per training task, meta-batch 25, one inner step with
# alpha = 0.01, Adam 0.001, 70,000 meta-iterations.
SINUSOID_PAPER = "MAML, Finn et al. 2017 (arXiv 1703.03400), section 5.1"
SINUSOID_SETTINGS = dict(inner_lr=0.01, inner_steps=1, train_k_shot=10, train_n_query=10,
                         meta_batch_size=25, meta_lr=1e-3, n_steps=70_000)
# The reference numbers for 5-shot sinusoid regression (query MSE after 1 / 5 / 10 gradient
# steps), read off the learning curves of the paper's Figure 3.
SINUSOID_RESULTS = {"maml": {1: 0.67, 5: 0.38, 10: 0.35},
                    "pretrained": {1: 2.41, 5: 2.23, 10: 2.19}}
SINUSOID_RESULTS_SOURCE = "Finn et al. 2017 (arXiv 1703.03400), Figure 3, read off the curves"


# -- notebook 07: applications (few-shot learning where labels are scarce) ------------------------
# Meta-training on Fashion-MNIST (Xiao et al. 2017, arXiv 1708.07747), classes 0-4, tested on
# 5-way episodes of classes 5-9 (``fashion_mnist.few_shot_split``). Each learner keeps its Omniglot
# setting (``OMNIGLOT_SETTINGS[base]``: network, hyperparameters) except what the keys below
# replace: with only five training classes, episodes are 5-way (``train_way``), ProtoNet sees 15
# queries per class (Snell et al.'s miniImageNet setting), and the step counts are much shorter
# than Omniglot's (ProtoNet 3,000 of 20,000; MAML 5,000 of 60,000) so that the runs fit one CPU
# session on a shared 2-core machine; the baseline pre-trains on the 30,000 training images of
# classes 0-4 in batches of 16 for 2,000 steps (about one epoch; Omniglot's: 5 epochs).
FASHION_MNIST_SETTINGS = {
    "protonet": dict(base="protonet", train_way=5, train_query=15, n_steps=3_000),
    "maml": dict(base="maml", train_way=5, n_steps=5_000),
    "baseline": dict(base="baseline", n_classes=5, batch_size=16, n_steps=2_000),
}
FASHION_MNIST_PROTOCOL = (
    "Fashion-MNIST few-shot split: meta-train on the official training images of classes 0-4 "
    "(T-shirt/top, Trouser, Pullover, Dress, Coat), test on 5-way episodes of the official test "
    "images of classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot), 15 queries per class, "
    "600 episodes, mean and 95 % CI; images 28x28 in [0, 1], background 0 as in Omniglot")

# Hospitals as tasks (UCI Heart Disease, ``heart_disease``): a 13-32-32-2 ReLU MLP; MAML (Finn et
# al. 2017, arXiv 1703.03400) meta-trained on tasks drawn from the three training hospitals (one
# hospital per task, chosen uniformly; ``train_k_shot`` labelled and ``train_query`` query
# patients), adapted with ``inner_steps`` plain gradient steps of ``inner_lr``; the pooled model
# is the same MLP fitted on all training patients (Adam, ``pooled_epochs`` epochs of batches of
# 32) and fine-tuned with the same inner steps; "local only" is an L2 logistic regression (C=1)
# fitted on the K labelled local patients alone.
HOSPITAL_SETTINGS = dict(hidden=(32, 32), inner_lr=0.1, inner_steps=5, train_k_shot=10,
                         train_query=20, meta_batch_size=16, meta_lr=1e-3, n_steps=1_000,
                         pooled_epochs=50, n_draws=100)

# Chen et al. 2019 (arXiv 1904.04232), Table 3: 5-way 5-shot accuracy (%) under a domain shift,
# meta-trained (or pre-trained) on miniImageNet and tested on CUB birds, ResNet-18 backbone, 600
# episodes with 95 % CI. Checked against the table as quoted in the README of github.com/thuml/
# few-shot (2026-12-07); the paper's other rows (Baseline++, MAML) were not checked and are left out.
CROSS_DOMAIN_RESULTS = {"Baseline": (65.57, 0.70), "ProtoNet": (62.02, 0.70),
                        "RelationNet": (57.71, 0.73), "MatchingNet": (53.07, 0.74)}
CROSS_DOMAIN_SOURCE = ("Chen et al. 2019 (arXiv 1904.04232), Table 3: miniImageNet -> CUB, "
                       "5-way 5-shot, ResNet-18, as quoted in the README of thuml/few-shot")


# -- notebook 08: learning for each person (MeLU on MovieLens) ------------------------------------
# MeLU (Lee, Im, Jang, Cho & Chung 2019, KDD, arXiv 1908.00413). Settings from the authors' code
# (github.com/hoyeoplee/MeLU, options.py and MeLU.py): embeddings of 32, decision layers 64-64-1,
# local (inner) learning rate 5e-6 on the decision layers only, global Adam 5e-5, meta-batch 32,
# 20 epochs over the training users, 1 local update in the code's default ("inner": 1). Protocol
# (paper, section 4): users with 13-100 ratings, 10 query ratings each, items released after 1997
# are "new". The code has no evaluation script (no MAE or nDCG code).
MELU_PAPER = "MeLU, Lee et al. 2019 (arXiv 1908.00413)"
MELU_SETTINGS = dict(embedding_dim=32, hidden=(64, 64), local_lr=5e-6, global_lr=5e-5,
                     meta_batch_size=32, epochs=20, local_updates=(1, 5), n_query=10,
                     min_ratings=13, max_ratings=100, year_cutoff=1997)
# MeLU-5's MAE on MovieLens-1M (with user demographics and item director/actor/rate features):
# recommending existing items to new users, and new items to new users.
MELU_RESULTS = {"user_cold_state": {"mae": 0.7854}, "user_and_item_cold_state": {"mae": 0.9235}}
MELU_RESULTS_SOURCE = ("Lee et al. 2019 (arXiv 1908.00413), results table, MovieLens-1M, MeLU-5 "
                       "rows; values as given in the course's issue 27: the paper's PDF was not "
                       "reachable offline to check them")


# -- notebook 09: meta-reinforcement learning (RL² on Bernoulli bandits) -------------------------
# Duan et al. 2016, Table 1: total reward averaged over 1,000 bandits (no CI given), by (k arms,
# n pulls); UCB1's entry is for a tuned exploration coefficient. The Thompson entries and random
# at n = 100 were written from memory of the table; our Thompson sampling scores 5.70 and 74.8
# on our test tasks, in agreement. Their Gittins entries approximate the discounted
# infinite-horizon index (Gittins et al. 2011, Chakravorty & Mahajan 2013, Whittle 1982; the best
# approximation per setting, section 3.1); ours is the finite-horizon index (bandits.gittins_arms).
RL2_BANDIT_RESULTS = {
    (5, 10): {"random": 5.0, "gittins": 6.6, "thompson": 5.7, "ucb1": 6.7, "rl2": 6.7},
    (5, 100): {"random": 49.9, "gittins": 78.3, "thompson": 74.7, "rl2": 78.7},
}
RL2_BANDIT_SOURCE = "Duan et al. 2016, RL², arXiv 1611.02779, Table 1 (k arms, n pulls)"


# -- notebook 09: MAML for RL on 2-D point navigation ---------------------------------------------
# Finn et al. 2017 (arXiv 1703.03400), section 5.3 and appendix: policy MLP 100-100 ReLU, inner
# step 0.1 on 20 trajectories of 100 steps per task, linear feature baseline, outer TRPO. The
# released code (cbfinn/maml_rl, maml_examples/maml_trpo_point.py) uses an inner step of 0.5
# instead of the text's 0.1 (its ICML policy file is named "..._flr_0.5..."), a meta-batch of 40
# goals (20 for the ICML policy), 100 meta-iterations and TRPO step size (KL) 0.01; its test script
# (test_maml_point.py) adapts with rllab's VPG on batches of 4,000 environment steps (40
# trajectories), step 0.5 for the first update and 0.25 after, and does not adapt the oracle.
MAML_RL_SETTINGS = dict(hidden=(100, 100), text_inner_lr=0.1, inner_lr=0.5, n_trajectories=20,
                        max_steps=100, meta_batch_size=40, n_steps=100, discount=0.99,
                        trpo_step_size=0.01, test_trajectories=40, test_step_sizes=(0.5, 0.25))
# The numbers behind Figure 4 (return vs gradient steps, log-scale plot): the released result
# files icml/icml_point_results_{maml,sens0,random,oracle}.pkl of cbfinn/maml_rl (commit cfa1dc2,
# 2017-07-19), average return of each of 40 test goals (np.random.seed(1)) after 0-3 steps, mean
# ± 1.96 s / sqrt(40) over goals computed here. "sens0" is the pre-trained policy: the plotting
# script icml/make_point_plots.py reads the pre-trained curve from a file it calls "maml0", the
# name test_maml_point.py gives the pre-trained policy, and sens0 is the only other file.
MAML_RL_RELEASED_RETURNS = {
    "maml": ((-40.41, 4.06), (-11.68, 2.19), (-3.33, 0.56), (-3.23, 0.58)),
    "pretrained": ((-40.81, 4.09), (-19.73, 3.03), (-11.72, 1.67), (-8.47, 0.54)),
    "random": ((-82.66, 2.19), (-57.96, 1.86), (-53.84, 1.64), (-46.81, 1.30)),
    "oracle": ((-2.29, 0.14),),
}
MAML_RL_SOURCE = ("Finn et al. 2017, arXiv 1703.03400, section 5.3 and Figure 4 (2-D "
                  "navigation); settings of cbfinn/maml_rl maml_examples/maml_trpo_point.py and "
                  "test_maml_point.py; returns from its icml/icml_point_results_*.pkl")
