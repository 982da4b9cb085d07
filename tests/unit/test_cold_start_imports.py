"""Cold start stays lazy: importing a function and building its composition root loads no X-Ray SDK, builds
no Pydantic model and creates no boto3 client; tracing still records the handler and its AWS calls.

Each check runs in a fresh interpreter (what a Lambda container starts from), with the variables the Lambda
runtime sets and tracing on, as deployed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(path.parent.name for path in (REPO / "functions").glob("*/app.py"))
# Powertools' idempotency layer registers its user-agent feature on the DynamoDB client it is given, which
# creates that client; the capacity functions read DynamoDB on every invocation anyway.
CLIENTS_AT_BUILD = {"alarm_scaler": ["dynamodb"], "scheduled_scaler": ["dynamodb"], "deferred_scaler": ["dynamodb"]}
# The settings are validated when the root is built, before any AWS call (by design: fail fast).
MODELS_AT_BUILD = ["shadowscale.shared.settings.Settings"]

DEPLOYED_ENVIRONMENT = {
    "POLICY_TABLE": "policy-table",
    "STATE_TABLE": "state-table",
    "IDEMPOTENCY_TABLE": "idempotency-table",
    "INTENT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/intents",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dead-letters",
    "DATA_BUCKET": "data-bucket",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:notices",
    "CAPTURE_DIFF_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/capture-diff",
    "POWERTOOLS_SERVICE_NAME": "shadowscale",
    "POWERTOOLS_METRICS_NAMESPACE": "ShadowscaleTest",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
}

COLD_START = """
import json, sys
sys.path[:0] = [{function_dir!r}, {layer_dir!r}]
import boto3.session
created = []
original = boto3.session.Session.client
def counting(self, *args, **kwargs):
    created.append(args[0] if args else kwargs.get("service_name"))
    return original(self, *args, **kwargs)
boto3.session.Session.client = counting
import app
app.entrypoints()
from pydantic import BaseModel
def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)
built = sorted(
    f"{{model.__module__}}.{{model.__qualname__}}"
    for model in set(subclasses(BaseModel))
    if model.__module__.startswith("shadowscale") and model.__pydantic_complete__
)
print(json.dumps({{
    "xray_sdk_loaded": "aws_xray_sdk.core" in sys.modules,
    "botocore_patched": "aws_xray_sdk.ext.botocore.patch" in sys.modules,
    "models_built": built,
    "clients_created": created,
}}))
"""

TRACED_CALL = """
import json, sys
sys.path[:0] = [{layer_dir!r}]
from botocore.stub import Stubber
from shadowscale.shared import clients
from shadowscale.shared.observability import tracer

sagemaker = clients.sagemaker()
emitted = []

class Recording:
    def send_entity(self, entity):
        emitted.append(json.loads(entity.serialize()))
    def set_daemon_address(self, address):
        pass

@tracer.capture_lambda_handler(capture_response=False)
def handler(event, context):
    from aws_xray_sdk.core import xray_recorder
    xray_recorder.configure(emitter=Recording())
    with Stubber(sagemaker) as stub:
        stub.add_response("list_endpoints", {{"Endpoints": []}}, {{}})
        sagemaker.list_endpoints()
    return {{}}

handler({{}}, None)
print(json.dumps(emitted))
"""


def _run(code: str, extra: dict[str, str]) -> str:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        **DEPLOYED_ENVIRONMENT,
        **extra,
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_cold_start_loads_no_xray_sdk_builds_no_model_and_creates_no_client(function: str) -> None:
    # GIVEN a fresh interpreter set up as the Lambda runtime sets it up, tracing on
    code = COLD_START.format(
        function_dir=str(REPO / "functions" / function), layer_dir=str(REPO / "layers" / "shadowscale")
    )
    # WHEN the function's module is imported and its composition root built (what the cold-start bench times)
    found = json.loads(_run(code, {"LAMBDA_TASK_ROOT": str(REPO / "functions" / function)}))
    # THEN the X-Ray SDK waits for the first invocation, models for their first validation, clients for their first call
    assert found == {
        "xray_sdk_loaded": False,
        "botocore_patched": False,
        "models_built": MODELS_AT_BUILD,
        "clients_created": CLIENTS_AT_BUILD.get(function, []),
    }


def test_tracing_still_records_the_handler_and_its_aws_calls() -> None:
    # GIVEN tracing on in a Lambda-like process with an active trace, and a client wired before the SDK loads
    code = TRACED_CALL.format(layer_dir=str(REPO / "layers" / "shadowscale"))
    trace = {
        "LAMBDA_TASK_ROOT": str(REPO / "functions" / "alarm_scaler"),
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    }
    # WHEN the traced handler makes one AWS call
    entities = json.loads(_run(code, trace))
    # THEN the handler's subsegment carries the cold-start annotation and the call has its own subsegment
    by_name = {entity["name"]: entity for entity in entities}
    assert by_name["## handler"]["annotations"]["ColdStart"] is True
    call = by_name["api.sagemaker"]  # the X-Ray SDK names a call's subsegment after the endpoint prefix
    assert (call["namespace"], call["aws"]["operation"]) == ("aws", "ListEndpoints")
    assert call["parent_id"] == by_name["## handler"]["id"]
