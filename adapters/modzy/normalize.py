"""A Modzy model's output and explanation, in the gateway's normalized shapes.

Modzy's classifiers answer ``{"data": {"result": {"classPredictions": [...]},
"explanation": ...}}`` or, in the explainability format, the same without the
``data`` wrapper plus a ``modelType``. Both become a ``ClassificationOutput``; any
other output becomes ``JsonOutput`` whole. Explanations (docs.modzy.com
"explainability formats"):

* imageClassification: ``explanation.maskRLE`` (column-major run lengths, as a flat
  list or a list of lists) and ``explanation.dimensions{height, width}``;
* textClassification: ``explanation.wordImportances`` (``{class: [{word, score,
  index?}]}``) and an optional ``explanation.explainableText``.

An explanation in a shape other than these is left out of the normalized item (it
stays in the item's ``raw``) rather than failing the item.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from adapters.outputs import (
    ClassificationOutput,
    Explanation,
    JsonOutput,
    LabelScore,
    MaskExplanation,
    Output,
    TokenImportanceExplanation,
    WordScore,
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _body(value: Any) -> Mapping[str, Any] | None:
    """The object holding ``result`` and ``explanation``: unwrapped from ``data`` if wrapped."""
    if not isinstance(value, dict):
        return None
    inner = value.get("data")
    if isinstance(inner, dict) and ("result" in inner or "explanation" in inner):
        return inner
    return value


def classification(body: Mapping[str, Any]) -> ClassificationOutput | None:
    """``result.classPredictions`` (or a bare ``classPredictions``) as a ClassificationOutput."""
    result = body.get("result")
    preds = result.get("classPredictions") if isinstance(result, dict) else None
    if preds is None:
        preds = body.get("classPredictions")
    if not isinstance(preds, list):
        return None
    scores: list[LabelScore] = []
    for pred in preds:
        if not isinstance(pred, dict):
            return None
        label = pred.get("class", pred.get("label"))
        score = _number(pred.get("score"))
        if not isinstance(label, str | int) or isinstance(label, bool) or score is None:
            return None
        scores.append(LabelScore(label=str(label), score=score))
    scores.sort(key=lambda s: s.score, reverse=True)
    top = scores[0] if scores else None
    return ClassificationOutput(
        label=top.label if top else None, score=top.score if top else None, scores=scores
    )


def _flat_ints(value: Any) -> list[int] | None:
    """``[[1, 2], [3]]`` or ``[1, 2, 3]`` as ``[1, 2, 3]``; None if anything is not a count."""
    if not isinstance(value, list):
        return None
    out: list[int] = []
    for part in value:
        if isinstance(part, list):
            inner = _flat_ints(part)
            if inner is None:
                return None
            out.extend(inner)
        elif isinstance(part, int) and not isinstance(part, bool) and part >= 0:
            out.append(part)
        elif isinstance(part, float) and part.is_integer() and part >= 0:
            out.append(int(part))
        else:
            return None
    return out


def mask_explanation(explanation: Mapping[str, Any]) -> MaskExplanation | None:
    counts = _flat_ints(explanation.get("maskRLE"))
    dims = explanation.get("dimensions")
    if counts is None or not isinstance(dims, dict):
        return None
    height, width = dims.get("height"), dims.get("width")
    if not isinstance(height, int) or not isinstance(width, int):
        return None
    if isinstance(height, bool) or isinstance(width, bool) or height < 0 or width < 0:
        return None
    return MaskExplanation(height=height, width=width, counts=counts)


def _explainable_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    # The docs' example shows an object; take its one text if it has exactly one.
    if isinstance(value, dict):
        texts = [v for v in value.values() if isinstance(v, str)]
        if len(texts) == 1:
            return texts[0]
    return None


def token_explanation(explanation: Mapping[str, Any]) -> TokenImportanceExplanation | None:
    importances = explanation.get("wordImportances")
    if not isinstance(importances, dict):
        return None
    by_label: dict[str, list[WordScore]] = {}
    for label, entries in importances.items():
        if not isinstance(entries, list):
            return None
        words: list[WordScore] = []
        for entry in entries:
            if not isinstance(entry, dict):
                return None
            word, score, index = entry.get("word"), _number(entry.get("score")), entry.get("index")
            if not isinstance(word, str) or score is None:
                return None
            if not isinstance(index, int) or isinstance(index, bool):
                index = None
            words.append(WordScore(word=word, score=score, index=index))
        by_label[str(label)] = words
    return TokenImportanceExplanation(
        text=_explainable_text(explanation.get("explainableText")), by_label=by_label
    )


def explanation_from_wire(value: Any) -> Explanation | None:
    if not isinstance(value, dict):
        return None
    if "maskRLE" in value:
        return mask_explanation(value)
    if "wordImportances" in value:
        return token_explanation(value)
    return None


def normalize_output(value: Any) -> tuple[Output, Explanation | None]:
    """A model's output as a normalized output and, where it carries one, explanation."""
    body = _body(value)
    if body is None:
        return JsonOutput(data=value), None
    explanation_value = body.get("explanation")
    if explanation_value is None and isinstance(value, dict):
        explanation_value = value.get("explanation")
    try:
        explanation = explanation_from_wire(explanation_value)
    except ValidationError:
        explanation = None
    try:
        output: Output | None = classification(body)
    except ValidationError:
        output = None
    return (output if output is not None else JsonOutput(data=value)), explanation
