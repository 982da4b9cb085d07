"""The one place Logger, Tracer and Metrics are created; everything else imports them from here.

Powertools reads POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE from the environment, and
tests switch tracing off with POWERTOOLS_TRACE_DISABLED, so creating them at import is safe.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "shadowscale"

logger = Logger(service=SERVICE)
# Only botocore is patched: the default also patches requests and httpx, which the functions never use.
tracer = Tracer(service=SERVICE, patch_modules=["botocore"])
metrics = Metrics(service=SERVICE)
