"""The simulated Modzy models: deterministic outputs and explanations, never random.

Two models, both answering in Modzy's documented classifier and explainability shapes:

* ``ed542963de`` 1.0.1, sentiment analysis of text (model input ``input.txt``):
  words like good/great/love/excellent push ``positive``, bad/terrible/awful/hate push
  ``negative``, and a text with neither gets a class from its hash;
* ``c60c8dbd79`` 0.0.1, image classification of embedded data URIs (model input
  ``image``): the class comes from a hash of the bytes; explained with a small
  column-major RLE mask whose size and pixels also come from that hash.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

SENTIMENT_ID = "ed542963de"
IMAGE_ID = "c60c8dbd79"

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


@dataclass(frozen=True, slots=True)
class SimModel:
    identifier: str
    version: str
    name: str
    #: The ``input.type`` the model takes.
    input_type: Literal["text", "embedded"]
    #: The model's one input name (the inner key of ``sources[item]``).
    input_name: str
    model_type: Literal["textClassification", "imageClassification"]


MODELS: tuple[SimModel, ...] = (
    SimModel(
        SENTIMENT_ID, "1.0.1", "Sentiment Analysis", "text", "input.txt", "textClassification"
    ),
    SimModel(IMAGE_ID, "0.0.1", "Image Classification", "embedded", "image", "imageClassification"),
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


def run_model(model: SimModel, value: str | bytes, *, explain: bool) -> dict[str, Any]:
    """The model's ``results.json`` for one input (text for text models, else bytes)."""
    if model.input_type == "text":
        text = value if isinstance(value, str) else value.decode("utf-8", "replace")
        return sentiment(text, explain=explain)
    data = value if isinstance(value, bytes) else value.encode()
    return classify_image(data, explain=explain)
