"""The simulated Modzy models: deterministic outputs and explanations, never random.

Three models, answering in Modzy's documented classifier and explainability shapes, each
described by its version's metadata (``inputs``/``outputs``, as ``GET
/api/models/{id}/versions/{version}`` answers it: modzy-sdk ``models.py`` ``get_version``):

* ``ed542963de`` 1.0.1, sentiment analysis of text (model input ``input.txt``):
  words like good/great/love/excellent push ``positive``, bad/terrible/awful/hate push
  ``negative``, and a text with neither gets a class from its hash;
* ``c60c8dbd79`` 0.0.1, image classification of embedded data URIs (model input
  ``image``): the class comes from a hash of the bytes; explained with a small
  column-major RLE mask whose size and pixels also come from that hash;
* ``b7d4c1a9e2`` 2.0.0, topic classification of text with two inputs, ``input.txt``
  and ``config.json`` (``{"labels": [...]}``, the topics to choose from): a model of
  the kind (``input`` + ``config.json``) that only a caller naming both inputs can call.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

SENTIMENT_ID = "ed542963de"
IMAGE_ID = "c60c8dbd79"
TOPICS_ID = "b7d4c1a9e2"

SENTIMENT_CLASSES = ("positive", "negative", "neutral")
IMAGE_CLASSES = ("cat", "dog", "bird", "shoe")

POSITIVE_WORDS = frozenset(
    {"good", "great", "love", "excellent", "amazing", "wonderful", "best", "happy", "nice"}
)
NEGATIVE_WORDS = frozenset(
    {"bad", "terrible", "awful", "hate", "worst", "poor", "horrible", "broken", "sad"}
)
#: Most words a text explanation lists (Modzy's explanations are bounded too).
MAX_EXPLAINED_WORDS = 64
#: Most labels a topic model's ``config.json`` may name.
MAX_TOPIC_LABELS = 20


class ModelInputError(ValueError):
    """An input item the model cannot process: the item fails, the job goes on."""


@dataclass(frozen=True, slots=True)
class SimIO:
    """One model input or output file, as the version metadata describes it."""

    name: str
    media_type: str
    description: str
    maximum_size: int = 1_000_000


RESULTS_JSON = SimIO("results.json", "application/json", "The model's predictions.")


@dataclass(frozen=True, slots=True)
class SimModel:
    identifier: str
    version: str
    name: str
    #: The ``input.type`` the model takes.
    input_type: Literal["text", "embedded"]
    #: The model's input files (the inner keys of ``sources[item]``), in the metadata's order.
    inputs: tuple[SimIO, ...]
    model_type: Literal["textClassification", "imageClassification"]
    outputs: tuple[SimIO, ...] = (RESULTS_JSON,)
    description: str = ""

    @property
    def input_name(self) -> str:
        """The first (for most models the only) input's name."""
        return self.inputs[0].name

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)


MODELS: tuple[SimModel, ...] = (
    SimModel(
        SENTIMENT_ID,
        "1.0.1",
        "Sentiment Analysis",
        "text",
        (SimIO("input.txt", "text/plain", "The text to judge."),),
        "textClassification",
        description="Positive, negative or neutral: the sentiment of an English text.",
    ),
    SimModel(
        IMAGE_ID,
        "0.0.1",
        "Image Classification",
        "embedded",
        (SimIO("image", "image/png, image/jpeg", "The picture to classify."),),
        "imageClassification",
        description="Cat, dog, bird or shoe: what a picture shows.",
    ),
    SimModel(
        TOPICS_ID,
        "2.0.0",
        "Topic Classification",
        "text",
        (
            SimIO("input.txt", "text/plain", "The text to classify."),
            SimIO(
                "config.json",
                "application/json",
                'The topics to choose from: {"labels": ["sports", "politics", ...]}.',
            ),
        ),
        "textClassification",
        description="Which of the caller's topics a text is about.",
    ),
)


def find_model(identifier: str, version: str) -> SimModel | None:
    for model in MODELS:
        if model.identifier == identifier and model.version == version:
            return model
    return None


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _predictions(classes: tuple[str, ...], top: str, digest: bytes, strength: int) -> list[Any]:
    """Scores summing to 1, ``top`` first, the rest in an order taken from ``digest``."""
    top_score = round(0.55 + 0.1 * min(strength, 3) + digest[1] / 255 * 0.05, 4)
    rest = [c for c in classes if c != top]
    if digest[2] % 2:
        rest.reverse()
    second = round((1 - top_score) * (0.55 + digest[3] / 255 * 0.3), 4)
    scores = [top_score, second, *([0.0] * (len(rest) - 1))]
    leftover = round(1 - top_score - second, 4)
    for i in range(2, len(scores)):
        share = leftover if i == len(scores) - 1 else round(leftover * 0.6, 4)
        scores[i] = share
        leftover = round(leftover - share, 4)
    return [{"class": c, "score": s} for c, s in zip((top, *rest), scores, strict=True)]


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _word_score(word: str, label: str) -> float:
    polarity = 1 if word in POSITIVE_WORDS else -1 if word in NEGATIVE_WORDS else 0
    if polarity == 0:
        return round((_digest(f"{label}:{word}".encode())[0] - 128) / 128 * 0.05, 4)
    if label == "neutral":
        return -0.2
    return 0.5 * polarity if label == "positive" else -0.5 * polarity


def sentiment(text: str, *, explain: bool) -> dict[str, Any]:
    """``results.json`` of the sentiment model for ``text``."""
    tokens = _tokens(text)
    polarity = sum(1 if t in POSITIVE_WORDS else -1 if t in NEGATIVE_WORDS else 0 for t in tokens)
    digest = _digest(text.encode())
    if polarity > 0:
        top = "positive"
    elif polarity < 0:
        top = "negative"
    else:
        top = SENTIMENT_CLASSES[digest[0] % len(SENTIMENT_CLASSES)]
    data: dict[str, Any] = {
        "result": {"classPredictions": _predictions(SENTIMENT_CLASSES, top, digest, abs(polarity))},
        "explanation": None,
    }
    if explain:
        shown = tokens[:MAX_EXPLAINED_WORDS]
        data["modelType"] = "textClassification"
        data["explanation"] = {
            "explainableText": " ".join(tokens),
            "wordImportances": {
                label: [
                    {"word": w, "score": _word_score(w, label), "index": i}
                    for i, w in enumerate(shown)
                ]
                for label in SENTIMENT_CLASSES
            },
        }
    return {"data": data}


def mask_rle(data: bytes) -> tuple[int, int, list[int]]:
    """A small deterministic mask: ``(height, width, counts)``, runs in column-major order.

    Runs alternate starting with background (0) pixels, so the first count may be 0.
    """
    digest = _digest(data)
    height, width = 6 + digest[5] % 5, 6 + digest[6] % 5
    bits = hashlib.shake_256(data).digest(height * width)
    # Index k of the column-major walk: column k // height, row k % height.
    pixels = [1 if b > 160 else 0 for b in bits]
    counts: list[int] = []
    current, run = 0, 0
    for p in pixels:
        if p == current:
            run += 1
        else:
            counts.append(run)
            current, run = p, 1
    counts.append(run)
    return height, width, counts


def classify_image(data: bytes, *, explain: bool) -> dict[str, Any]:
    """``results.json`` of the image model: wrapped, or the explainability object."""
    digest = _digest(data)
    top = IMAGE_CLASSES[digest[0] % len(IMAGE_CLASSES)]
    result = {"classPredictions": _predictions(IMAGE_CLASSES, top, digest, digest[4] % 3)}
    if not explain:
        return {"data": {"result": result, "explanation": None}}
    height, width, counts = mask_rle(data)
    return {
        "modelType": "imageClassification",
        "result": result,
        "explanation": {"maskRLE": [counts], "dimensions": {"height": height, "width": width}},
    }


def topic_labels(config: str | bytes) -> list[str]:
    """The labels of a topic model's ``config.json``; ModelInputError when unusable."""
    text = config.decode("utf-8", "replace") if isinstance(config, bytes) else config
    try:
        parsed = json.loads(text)
    except ValueError:
        raise ModelInputError("config.json is not valid JSON.") from None
    labels = parsed.get("labels") if isinstance(parsed, dict) else None
    if (
        not isinstance(labels, list)
        or not labels
        or len(labels) > MAX_TOPIC_LABELS
        or not all(isinstance(label, str) and label.strip() for label in labels)
    ):
        raise ModelInputError(
            f'config.json must be {{"labels": [...]}} with 1 to {MAX_TOPIC_LABELS} '
            "non-empty strings."
        )
    return list(dict.fromkeys(label.strip() for label in labels))


def topics(text: str, labels: list[str]) -> dict[str, Any]:
    """``results.json`` of the topic model: a label scores by how often its words occur."""
    tokens = _tokens(text)
    weights = []
    for label in labels:
        hits = sum(tokens.count(word) for word in _tokens(label))
        weights.append(1 + 4 * hits + _digest(f"{label}:{text}".encode())[0] / 255)
    total = sum(weights)
    ranked = sorted(zip(labels, weights, strict=True), key=lambda lw: lw[1], reverse=True)
    preds = [{"class": label, "score": round(w / total, 4)} for label, w in ranked]
    return {"data": {"result": {"classPredictions": preds}, "explanation": None}}


def check_inputs(model: SimModel, values: Mapping[str, str | bytes]) -> None:
    """Raise ModelInputError for what this model cannot process (before it runs)."""
    if model.identifier == TOPICS_ID:
        topic_labels(values["config.json"])


def run_model(
    model: SimModel, values: Mapping[str, str | bytes], *, explain: bool
) -> dict[str, Any]:
    """The model's ``results.json`` for one input item (its values by model input name).

    Text models get text, the others bytes; ``check_inputs`` has passed.
    """
    value = values[model.input_name]
    if model.input_type == "text":
        text = value if isinstance(value, str) else value.decode("utf-8", "replace")
        if model.identifier == TOPICS_ID:
            return topics(text, topic_labels(values["config.json"]))
        return sentiment(text, explain=explain)
    data = value if isinstance(value, bytes) else value.encode()
    return classify_image(data, explain=explain)
