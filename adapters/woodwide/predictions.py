"""Wood Wide ``prediction`` rows: classification or regression, and their probabilities.

[doc: woodwide 0.9.0 ``resources/models/models.py``] A prediction row has ``id`` and
``prediction``; ``prediction_prob`` is the predicted class's probability (binary
classification), ``prediction_probs`` the probabilities of the classes (multiclass).
The real API sends ``prediction_probs`` as a float (the predicted class's) or a list
per row (PROVIDERS.md header); an object ``{label: p}`` and, in csv, JSON or numpy
text are read too. A list is matched to labels by the order of
``prediction_descriptions``' keys (label → description) when the counts agree
[inferred: the library does not say the list's order]; otherwise its highest value is
taken as the predicted class's probability.

Classification or regression is decided for the whole table, never from the look of
a label: a probability column makes it classification (numeric labels stay labels,
with their score); else ``prediction_descriptions`` keyed ``{target}_regression``
[doc] make it regression and keys that are labels classification; only a table with
neither falls back to the value (a number is a regression).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from adapters.outputs import ClassificationOutput, LabelScore, Output, RegressionOutput
from adapters.woodwide import values

Task = Literal["classification", "regression"]
PROB_COLUMNS = frozenset({"prediction_prob", "prediction_probs"})


def description_keys(descriptions: Mapping[str, Any]) -> list[str]:
    found = descriptions.get("prediction_descriptions")
    return [str(k) for k in found] if isinstance(found, Mapping) else []


def task_of(columns: Iterable[str], descriptions: Mapping[str, Any]) -> Task | None:
    if PROB_COLUMNS & set(columns):
        return "classification"
    keys = description_keys(descriptions)
    if not keys:
        return None
    return "regression" if any(k.endswith("_regression") for k in keys) else "classification"


def class_labels(descriptions: Mapping[str, Any]) -> list[str]:
    """The classes, in the order of ``prediction_descriptions`` (empty for regression)."""
    keys = description_keys(descriptions)
    return [] if any(k.endswith("_regression") for k in keys) else keys


Probs = float | dict[str, float] | list[float] | None


def parse_probs(value: Any) -> Probs:
    """``prediction_probs`` in any of its shapes: a float, a list, ``{label: p}``."""
    if values.blank(value):
        return None
    value = values.structured(value)
    if isinstance(value, Mapping):
        return {str(k): values.number(v) for k, v in value.items()}
    if isinstance(value, list):
        if all(isinstance(v, Mapping) for v in value):
            return {
                str(v["label"]): values.number(v.get("prob", v.get("score")))
                for v in value
                if isinstance(v, Mapping)
            }
        return [values.number(v) for v in value]
    return values.number(value)


def prediction_output(
    row: Mapping[str, Any], task: Task | None = None, labels: list[str] | None = None
) -> Output:
    prediction = row.get("prediction")
    prob = values.opt_number(row.get("prediction_prob"))
    probs = parse_probs(row.get("prediction_probs"))
    if task is None and (prob is not None or probs is not None):
        task = "classification"
    if task == "regression" or (task is None and values.is_number(prediction)):
        return RegressionOutput(value=values.number(prediction))
    label = values.label(prediction)
    by_label: dict[str, float] = {}
    if isinstance(probs, float):
        prob = probs if prob is None else prob
    elif isinstance(probs, dict):
        by_label = probs
    elif isinstance(probs, list) and probs:
        if labels and len(labels) == len(probs):
            by_label = dict(zip(labels, probs, strict=True))
        elif prob is None:
            prob = max(probs)  # the predicted class is the most probable one
    if prob is None and label is not None:
        prob = by_label.get(label)
    scores = sorted(
        (LabelScore(label=k, score=v) for k, v in by_label.items()), key=lambda s: -s.score
    )
    if not scores and label is not None and prob is not None:
        # Binary models (and a float prediction_probs) give only the predicted label's
        # probability: that one score is all that can be said.
        scores = [LabelScore(label=label, score=prob)]
    return ClassificationOutput(label=label, score=prob, scores=scores)
