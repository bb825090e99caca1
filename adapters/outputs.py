"""The normalized output, explanation and job-output shapes of the v1 API.

Adapters build these; the gateway serves them as they are, and ``/openapi.json``
documents them from these very classes. Every model forbids unknown fields so an
adapter cannot leak a provider's field into the contract by accident; what has no
known shape goes into ``JsonOutput.data`` whole, so nothing is dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field


class _Shape(BaseModel):
    # Every field of a shape is always serialized, defaults included, so the documented
    # (serialization) schema marks them all required: a client can rely on ``type``
    # being there to tell the shapes apart.
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
    )


class LabelScore(_Shape):
    label: str
    score: float


class ClassificationOutput(_Shape):
    type: Literal["classification"] = "classification"
    label: str | None
    score: float | None = None
    scores: list[LabelScore] = Field(default_factory=list)
    reasoning: str | None = None


class RegressionOutput(_Shape):
    type: Literal["regression"] = "regression"
    value: float


class ClusteringOutput(_Shape):
    type: Literal["clustering"] = "clustering"
    cluster: int | str
    description: str | None = None


class AnomalyOutput(_Shape):
    type: Literal["anomaly"] = "anomaly"
    is_anomaly: bool
    score: float | None = None


class EmbeddingOutput(_Shape):
    type: Literal["embedding"] = "embedding"
    vector: list[float]


class Match(_Shape):
    id: str
    score: float | None = None


class MatchOutput(_Shape):
    type: Literal["match"] = "match"
    matches: list[Match]


class Annotation(_Shape):
    label: str
    text: str | None = None
    start: int | None = None
    end: int | None = None
    page: int | None = None
    bbox: list[float] | None = None
    score: float | None = None


class AnnotationsOutput(_Shape):
    type: Literal["annotations"] = "annotations"
    annotations: list[Annotation]


class JsonOutput(_Shape):
    type: Literal["json"] = "json"
    data: Any


Output = Annotated[
    ClassificationOutput
    | RegressionOutput
    | ClusteringOutput
    | AnomalyOutput
    | EmbeddingOutput
    | MatchOutput
    | AnnotationsOutput
    | JsonOutput,
    Field(discriminator="type"),
]

#: The ``type`` of a normalized item output: what a model's ``output_type`` names.
OutputType = Literal[
    "classification",
    "regression",
    "clustering",
    "anomaly",
    "embedding",
    "match",
    "annotations",
    "json",
]
OUTPUT_TYPES: tuple[str, ...] = get_args(OutputType)


class MaskExplanation(_Shape):
    """Pixels that drove an image prediction, run-length encoded in column-major order."""

    type: Literal["mask"] = "mask"
    encoding: Literal["rle_column_major"] = "rle_column_major"
    height: int
    width: int
    counts: list[int]


class WordScore(_Shape):
    word: str
    score: float
    index: int | None = None


class TokenImportanceExplanation(_Shape):
    """Per-label word importances for a text prediction."""

    type: Literal["token_importance"] = "token_importance"
    text: str | None = None
    by_label: dict[str, list[WordScore]]


Explanation = Annotated[MaskExplanation | TokenImportanceExplanation, Field(discriminator="type")]


class Factor(_Shape):
    id: int | str
    description: str | None = None
    captured_variance: float | None = None


class FactorsOutput(_Shape):
    type: Literal["factors"] = "factors"
    factors: list[Factor]


JobOutput = Annotated[FactorsOutput | JsonOutput, Field(discriminator="type")]
