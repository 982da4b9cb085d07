"""A model of your own behind a local endpoint: `make local-up MODELS=fraud-detector-v2=examples.local_model:predict`.

The local cloud calls `predict(body, content_type)` for every InvokeEndpoint that reaches a variant of the
SageMaker model it is registered for, and for every copy SageMaker would send that variant as a shadow.
Return the answer's bytes, or (bytes, content type); raise to answer with an error (ModelError, 424).
"""

from __future__ import annotations

import json
import math

# A fixed logistic model over 8 CSV features: a stand-in for whatever your container serves.
WEIGHTS = (0.8, -1.2, 0.5, 0.3, -0.7, 1.1, -0.4, 0.9)
BIAS = -0.1


def predict(body: bytes, content_type: str) -> tuple[bytes, str]:
    if content_type not in ("text/csv", "application/json"):
        raise ValueError(f"unsupported content type {content_type!r}: send text/csv or application/json")
    text = body.decode()
    values = json.loads(text)["features"] if content_type == "application/json" else text.split(",")
    features = [float(value) for value in values]
    if len(features) != len(WEIGHTS):
        raise ValueError(f"expected {len(WEIGHTS)} features, got {len(features)}")
    logit = BIAS + sum(weight * value for weight, value in zip(WEIGHTS, features, strict=True))
    score = 1.0 / (1.0 + math.exp(-logit))
    answer = {"score": round(score, 6), "label": int(score >= 0.5), "model": "fraud-detector-v2"}
    return json.dumps(answer, separators=(",", ":")).encode(), "application/json"
