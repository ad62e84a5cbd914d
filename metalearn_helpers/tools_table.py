"""The meta-learning libraries a practitioner reaches for next, as plain data with their sources.

Defined in notebook ``11_tools_trends_faq`` (its tools table). Every fact in :data:`TOOLS` was
read on :data:`CHECKED` in the project's own repository (a stored snapshot of its git history:
tags, last commit, README, setup.py) or documentation, whose addresses are in the row's
``sources``; a release date is a tag's date in the repository, and what could not be checked
says so ("not checked"). :func:`tools_rows` turns the rows into strings for
:func:`metalearn_helpers.records.markdown_table`.
"""

from __future__ import annotations

CHECKED = "2026-12-07"

TOOLS = [
    {
        "name": "learn2learn",
        "framework": "PyTorch",
        "provides": "algorithm wrappers (`MAML(model, lr, first_order)`, Meta-SGD; ANIL, "
                    "ProtoNets, Reptile as examples), `Taskset` and task transforms over any "
                    "PyTorch data set, vision benchmarks (mini-/tiered-ImageNet, CIFAR-FS, FC100, "
                    "CUB, ...), meta-RL environments, differentiable optimisers",
        "state": "latest tag v0.2.1, dated 2023-06-27; latest commit in the stored history "
                 "2023-07-03; issue #413 (its wheel does not build on Python 3.11) is open",
        "course": "`maml.MAML`, `maml.MetaSGD`, `reptile`, `protonet`; "
                  "`episodes.TaskFamily`, `LabelledImageEpisodes`",
        "sources": ["https://github.com/learnables/learn2learn",
                    "https://pypi.org/project/learn2learn/",
                    "https://github.com/learnables/learn2learn/issues/413"],
    },
    {
        "name": "higher",
        "framework": "PyTorch",
        "provides": "makes an existing `torch.nn.Module` stateless (weights as arguments) and "
                    "differentiable versions of `torch.optim` optimisers, so gradients flow "
                    "through unrolled inner loops (Grefenstette et al. 2019, arXiv 1910.01727); "
                    "no data sets or task samplers",
        "state": "latest tag v0.2.1, dated 2020-07-14; latest commit 2021-10-26",
        "course": "`MAML.adapt` and `MAML.forward` (Keras `stateless_call` inside nested "
                  "`tf.GradientTape`s, notebook 03)",
        "sources": ["https://github.com/facebookresearch/higher",
                    "https://pypi.org/project/higher/"],
    },
    {
        "name": "Torchmeta",
        "framework": "PyTorch",
        "provides": "data loaders for few-shot benchmarks (sine waves, Omniglot, "
                    "mini-/tiered-ImageNet, CIFAR-FS, FC100, CUB, ...) and `MetaModule` layers "
                    "that take their weights as arguments; its author notes it has no "
                    "algorithm implementations beyond examples (issue #26)",
        "state": "latest commit 2021-09-20 (\"Bump version to 1.8.0\"); its setup.py requires "
                 "torch < 1.10; GitHub's archive flag: not checked",
        "course": "`episodes.OmniglotEpisodes`, `SinusoidTasks`, `LabelledImageEpisodes`",
        "sources": ["https://github.com/tristandeleu/pytorch-meta",
                    "https://pypi.org/project/torchmeta",
                    "https://github.com/tristandeleu/pytorch-meta/issues/26"],
    },
    {
        "name": "cbfinn/maml",
        "framework": "TensorFlow 1",
        "provides": "the MAML paper's own code: sinusoid regression, Omniglot and "
                    "MiniImagenet experiments, built on TF1 graphs (`tf.placeholder`); its "
                    "README asks for TensorFlow v1.0+",
        "state": "research code, no release tags; latest commit 2019-02-28",
        "course": "`papers.SINUSOID_SETTINGS`, `papers.OMNIGLOT_SETTINGS` (its settings), "
                  "notebooks 03 and 04",
        "sources": ["https://github.com/cbfinn/maml"],
    },
    {
        "name": "torch.func",
        "framework": "PyTorch (built in)",
        "provides": "JAX-like composable function transforms (`grad`, `vmap`, `vjp`, `jvp`), "
                    "formerly functorch; its documentation lists batching the tasks of MAML's inner "
                    "loop as a use case",
        "state": "part of PyTorch; its documentation marks it beta (APIs may change)",
        "course": "`MAML.forward` (`stateless_call`) and `learners.mean_meta_gradient`",
        "sources": ["https://pytorch.org/docs/stable/func",
                    "https://docs.pytorch.org/docs/stable/func.md"],
    },
    {
        "name": "jax-meta (jax-meta-learning)",
        "framework": "JAX (dm-haiku, optax)",
        "provides": "MAML, ANIL, iMAML, Meta-SGD, R2-D2 and LR-D2 meta-learners, and few-shot "
                    "data sets (Omniglot, mini-/tiered-ImageNet, CIFAR-FS, FC100)",
        "state": "version 1.0.3; classified \"Development Status :: 3 - Alpha\"; latest "
                 "commit 2022-06-22",
        "course": "`maml.MAML`, `maml.MetaSGD` (ANIL and iMAML: notebook 11, trends)",
        "sources": ["https://github.com/tristandeleu/jax-meta-learning",
                    "https://pypi.org/project/jax-meta/"],
    },
    {
        "name": "JAXopt",
        "framework": "JAX",
        "provides": "differentiable, batchable optimisers with implicit differentiation of "
                    "their solutions (what implicit MAML needs); a documentation notebook solves "
                    "MAML's sinusoid regression with implicit MAML (Rajeswaran et al. 2019)",
        "state": "its README says it is no longer maintained nor developed, with some "
                 "features ported to Optax; latest tag jaxopt-v0.8.5, dated 2025-04-14",
        "course": "none: the course differentiates through unrolled inner loops",
        "sources": ["https://github.com/google/jaxopt",
                    "https://github.com/google/jaxopt/blob/main/docs/notebooks/implicit_diff/maml.md"],
    },
    {
        "name": "TensorFlow 2 + Keras 3 (this course)",
        "framework": "TensorFlow",
        "provides": "`Layer.stateless_call(trainable_variables, non_trainable_variables, ...)` "
                    "runs a model on any list of weights, so adapted weights stay tensors on "
                    "the gradient tape; `tf.function` graphs; runs on a laptop CPU",
        "state": "maintained; the course supports TensorFlow 2.16-2.21 and Keras 3.7 up to "
                 "(not including) 4 (`pyproject.toml`)",
        "course": "the whole course: `metalearn_helpers`",
        "sources": ["https://github.com/keras-team/keras/blob/master/keras/src/layers/layer.py"],
    },
]

COLUMNS = {"name": "library", "framework": "framework", "provides": "what it provides",
           "state": f"state (read {CHECKED})", "course": "the course's equivalent",
           "sources": "sources"}


def tools_rows(tools=TOOLS) -> list[dict]:
    """The rows of :data:`TOOLS` as strings for :func:`records.markdown_table`, sources as
    numbered links. Raises ``ValueError`` naming a row without an https source."""
    rows = []
    for tool in tools:
        sources = tool.get("sources") or []
        if not sources or not all(str(url).startswith("https://") for url in sources):
            raise ValueError(f"tool {tool.get('name')!r} needs at least one https:// source, "
                             f"got {sources!r}.")
        links = ", ".join(f"[{i}]({url})" for i, url in enumerate(sources, start=1))
        rows.append({title: links if key == "sources" else tool[key].replace("|", "/")
                     for key, title in COLUMNS.items()})
    return rows
