"""IAM enforced in the local cloud: every request a stack role makes is authorised as AWS would.
Targets moto==5.2.5.

moto's own access control (moto/iam/access_control.py, switched on by INITIAL_NO_AUTH_ACTION_COUNT)
matches actions only, against resource "*" for most services, and ignores conditions. Installed,
`IamEnforcement` replaces `ActionAuthenticatorMixin._authenticate_and_authorize_action`, through which
every moto request passes, with:

- who: the request's access key (its Authorization header). A key of an assumed-role session that
  `RoleSessions` made for a function or a state machine is evaluated as that role; any other key is the
  operator (tests, the CLI, the demo's set-up, the AWS services the local cloud plays itself) and is
  allowed everything.
- what: `OPERATIONS` turns each API operation a stack role calls into authorisation checks: the IAM
  action and resource ARN(s) built from the request's parameters as the Service Authorization Reference
  defines them (UpdateEndpoint needs the endpoint and the endpoint config; DescribeScalableTargets has no
  resource type, so "*"), the request's condition keys (Application Auto Scaling's service-namespace and
  scalable-dimension; a SageMaker request's tags as aws:RequestTag / aws:TagKeys, and the tags the
  resource has, read from moto's backend, as aws:ResourceTag), and what the service itself checks on the
  caller's behalf (below). A stack role calling an operation missing from the table fails loudly
  (`UnmodelledOperation`), so a new call is noticed, never allowed by default.
- how: the role's inline and attached policies from moto's IAM backend, evaluated by iam_policies.py,
  with an SQS queue's, an SNS topic's and a KMS key's policy (IAM policies count for a key only where its
  key policy lets the account's IAM policies govern it).
- service-side rules AWS documents: S3 answers 403 AccessDenied for a missing key to a caller without
  s3:ListBucket on the bucket (evaluated without s3:prefix: a GetObject request carries none); SSE-KMS
  queues, topics and buckets need the caller's KMS permissions on their key; Application Auto Scaling
  validates that the caller of RegisterScalableTarget / PutScalingPolicy may describe and scale the
  endpoint variant and manage the alarms of its policies. (DynamoDB tables encrypted with a customer
  managed key need no KMS permissions of the caller: DynamoDB uses the key through grants of its own.)

Denials answer the service's AccessDenied error: `User: <session arn> is not authorized to perform:
<action> on resource: <arn> because no identity-based policy allows the <action> action`.

Two behaviours AWS does not document are switches: the alarm resource Application Auto Scaling
validates (`aas_alarm_resource`: the target's own TargetTracking alarms, or every alarm) and the error
code it answers a failed validation with (`aas_validation_error`).

Every decision is kept in `records` with the statements that allowed or denied it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Self
from urllib.parse import unquote

import moto
from moto.core import authorization
from moto.core.exceptions import ServiceException
from moto.s3.exceptions import S3ClientError
from werkzeug.exceptions import HTTPException

from shadowscale_localcloud.iam_policies import (
    Caller,
    Decision,
    Evaluation,
    Statement,
    StatementRef,
    evaluate,
    parse_policy,
)
from shadowscale_localcloud.resources import ACCOUNT, REGION

TARGET_MOTO_VERSION = "5.2.5"
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/")
SIGNING_NAMES = {"monitoring": "cloudwatch"}  # SigV4 signing name → IAM service prefix, where they differ
# What each service calls its access-denied error (the rest: AccessDeniedException, HTTP 400).
ACCESS_DENIED = {
    "s3": ("AccessDenied", 403),
    "sqs": ("AccessDenied", 400),
    "sns": ("AuthorizationError", 403),
    "cloudwatch": ("AccessDenied", 403),
    "lambda": ("AccessDeniedException", 403),
}
AAS_VALIDATION = "Application Auto Scaling validates the caller's permissions on the target service and CloudWatch"
AasAlarmResource = Literal["target-alarms", "any-alarm"]


class UnmodelledOperation(NotImplementedError):
    """A stack role called an operation the local cloud's IAM table does not describe."""


@dataclass(frozen=True)
class Principal:
    role_arn: str
    session_arn: str
    label: str  # "function shadowscale-dev-capture-diff", "state machine role ..."

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Denial:
    """The error a service answers when a check fails, where it is not the service's plain AccessDenied."""

    code: str
    status: int
    message: str | None = None  # None: IAM's wording, naming the action and resource


@dataclass(frozen=True)
class Check:
    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    because: str = ""  # why the request needs it, when it is not the operation's own action
    denial: Denial | None = None


@dataclass(frozen=True)
class AuthorizationRecord:
    principal: Principal
    operation: str  # the API call, e.g. "sqs:SendMessage" (S3: moto's action name)
    check: Check
    evaluation: Evaluation

    @property
    def allowed(self) -> bool:
        return self.evaluation.allowed


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


# --- identities ------------------------------------------------------------------------------------


class RoleSessions:
    """Temporary credentials of the stack's roles, as Lambda and Step Functions hold them: one
    assumed-role session per role and session name, made directly in moto's STS backend (the services
    assume their roles themselves; no AssumeRole request is made). Cached: a session lasts the run."""

    def __init__(self, account: str = ACCOUNT, region: str = REGION) -> None:
        self.account = account
        self.region = region
        self._sessions: dict[tuple[str, str], RoleCredentials] = {}
        self._principals: dict[str, Principal] = {}
        self._lock = threading.Lock()
        self._interpreter_originals: dict[str, Any] = {}

    def credentials(self, role_arn: str, session_name: str, label: str) -> RoleCredentials:
        with self._lock:
            found = self._sessions.get((role_arn, session_name))
            if found is not None:
                return found
            from moto.sts.models import sts_backends

            assumed = sts_backends[self.account]["aws"].assume_role(
                region_name=self.region,
                role_session_name=session_name[:64],
                role_arn=role_arn,
                policy="",
                duration=43_200,
                external_id="",
            )
            made = RoleCredentials(assumed.access_key_id, assumed.secret_access_key, assumed.session_token)
            self._sessions[(role_arn, session_name)] = made
            self._principals[made.access_key_id] = Principal(role_arn, assumed.arn, label)
            return made

    def function_environment(self, role_arn: str, function_name: str) -> dict[str, str]:
        """A function's AWS_* credential variables: Lambda names the session after the function."""
        return self.credentials(role_arn, function_name, f"function {function_name}").environment()

    def principal(self, access_key_id: str) -> Principal | None:
        return self._principals.get(access_key_id)

    # moto's ASL interpreter makes every SDK integration call (aws-sdk:*, lambda:invoke, sns:publish, the
    # Distributed Map's ItemReader / ResultWriter) with boto_client_for(region, service, credentials),
    # whose credentials carry the execution's role ARN, but it signs with the fixed key "ak". Installed,
    # these calls are made with a session of that role, as Step Functions makes them with the state
    # machine's execution role.
    _INTERPRETER_MODULES = (
        "moto.stepfunctions.parser.asl.utils.boto_client",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported",
        "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
        "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    )

    def install(self) -> Self:
        if moto.__version__ != TARGET_MOTO_VERSION:
            raise RuntimeError(f"RoleSessions targets moto {TARGET_MOTO_VERSION}, found {moto.__version__}")
        import boto3
        from botocore.config import Config
        from moto.core.models import botocore_stubber
        from moto.settings import moto_server_port
        from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
        from moto.stepfunctions.parser.asl.utils import boto_client

        original = boto_client.boto_client_for
        sessions = self
        # Building a client costs milliseconds and every SDK-integration state asks for one; clients are
        # thread-safe and the role's credentials are fixed per session, so one client per key serves all.
        made: dict[tuple[str, str, str, bool], Any] = {}
        made_lock = threading.Lock()

        def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:  # noqa: ANN401
            role_arn = getattr(state_credentials, "role_arn", None)
            if not role_arn:
                return original(region, service, state_credentials)
            role_name = str(role_arn).rsplit("/", 1)[-1]
            credentials = sessions.credentials(
                role_arn, f"StepFunctions-{role_name}", f"state machine role {role_name}"
            )
            key = (region, service, credentials.access_key_id, botocore_stubber.enabled)
            with made_lock:
                found = made.get(key)
                if found is None:
                    found = made[key] = new_client(region, service, credentials)
                return found

        def new_client(region: str, service: str, credentials: RoleCredentials) -> Any:  # noqa: ANN401
            extra = {} if botocore_stubber.enabled else {"endpoint_url": f"http://localhost:{moto_server_port()}"}
            make_client: Any = boto3.client  # typed per service name only
            return make_client(
                service_name=service,
                region_name=region,
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=credentials.session_token,
                config=Config(
                    parameter_validation=False,
                    retries={"max_attempts": 0, "total_max_attempts": 1},
                    connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                    read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                ),
                **extra,
            )

        # Every module first: one imported after the patch would bind the patched function for good.
        modules = {name: importlib.import_module(name) for name in self._INTERPRETER_MODULES}
        for name, module in modules.items():
            if getattr(module, "boto_client_for", None) is original:
                self._interpreter_originals[name] = original
                setattr(module, "boto_client_for", boto_client_for)  # noqa: B010
        return self

    def uninstall(self) -> None:
        for name, original in self._interpreter_originals.items():
            setattr(importlib.import_module(name), "boto_client_for", original)  # noqa: B010
        self._interpreter_originals = {}


# --- requests --------------------------------------------------------------------------------------


@dataclass
class Request:
    """One moto request, as the operation table needs it."""

    service: str  # IAM prefix
    operation: str  # API operation; for S3, moto's action name (GetObject, ListBucket, ...)
    method: str
    response: Any  # moto's BaseResponse handling it
    s3_resource: str = "*"
    account: str = ACCOUNT
    region: str = REGION

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if regional else ''}:{self.account if regional else ''}:{resource}"

    @cached_property
    def params(self) -> dict[str, Any]:
        parsed = getattr(self.response, "params", None)  # services moto parses with botocore's model
        if isinstance(parsed, dict) and parsed:
            return parsed
        body = self.response.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        if body and str(body).lstrip().startswith("{"):
            loaded: dict[str, Any] = json.loads(body)
            return loaded
        return {
            key: value[0] if isinstance(value, list) and len(value) == 1 else value
            for key, value in dict(self.response.querystring).items()
        }

    def param(self, name: str) -> str:
        value = self.params.get(name)
        if value is None:
            value = (getattr(self.response, "uri_match", None) or {}).get(name)
        if value is None:
            raise UnmodelledOperation(f"{self.service}:{self.operation}: request has no {name}")
        return unquote(str(value))

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        path = self.s3_resource.split(":::", 1)[-1]
        bucket, _, key = path.partition("/")
        return bucket, key


class Backends:
    """What the checks read from moto's backends: keys of encrypted resources, existing targets."""

    def __init__(self, account: str = ACCOUNT, region: str = REGION) -> None:
        self.account = account
        self.region = region

    def kms_key_arn(self, key_id: str | None) -> str | None:
        """A customer managed key's ARN; None for no key, or an AWS managed key (alias/aws/...), whose key
        policy already lets every principal of the account that may use the service use it."""
        if not key_id or "alias/aws/" in key_id:
            return None
        from moto.kms.models import kms_backends

        backend = kms_backends[self.account][self.region]
        with contextlib.suppress(Exception):
            return str(backend.describe_key(backend.any_id_to_key_id(key_id)).arn)
        return None

    def key_policy(self, key_arn: str) -> str | Mapping[str, Any] | None:
        from moto.kms.models import kms_backends

        key = kms_backends[self.account][self.region].keys.get(key_arn.rsplit("/", 1)[-1])
        return None if key is None else key.policy

    def _queue(self, queue_name: str) -> Any:  # noqa: ANN401
        from moto.sqs.models import sqs_backends

        return sqs_backends[self.account][self.region].queues.get(queue_name)

    def queue_key(self, queue_name: str) -> str | None:
        queue = self._queue(queue_name)
        return None if queue is None else self.kms_key_arn(getattr(queue, "kms_master_key_id", None))

    def queue_policy(self, queue_name: str) -> str | None:
        queue = self._queue(queue_name)
        policy = None if queue is None else getattr(queue, "policy", None)
        return policy if isinstance(policy, str) and policy else None

    def topic_key(self, topic_arn: str) -> str | None:
        from moto.sns.models import sns_backends

        topic = sns_backends[self.account][self.region].topics.get(topic_arn)
        return None if topic is None else self.kms_key_arn(getattr(topic, "kms_master_key_id", None))

    def topic_policy(self, topic_arn: str) -> str | None:
        from moto.sns.models import sns_backends

        topic = sns_backends[self.account][self.region].topics.get(topic_arn)
        return None if topic is None else str(topic.policy)

    def _bucket(self, bucket: str) -> Any:  # noqa: ANN401
        from moto.s3.models import s3_backends

        return s3_backends[self.account]["aws"].buckets.get(bucket)

    def bucket_default_key(self, bucket: str) -> str | None:
        found = self._bucket(bucket)
        rules = (getattr(found, "encryption", None) or {}).get("Rule") or [] if found else []
        for rule in [rules] if isinstance(rules, Mapping) else rules:
            default = rule.get("ApplyServerSideEncryptionByDefault") or {}
            if default.get("SSEAlgorithm") == "aws:kms":
                return self.kms_key_arn(default.get("KMSMasterKeyID") or "alias/aws/s3")
        return None

    def object_state(self, bucket: str, key: str) -> tuple[bool, str | None]:
        """Whether the key exists (a delete marker does not count), and the KMS key it is encrypted with."""
        from moto.s3.models import FakeKey, s3_backends

        try:
            found = s3_backends[self.account]["aws"].get_object(bucket, key)
        except Exception:  # no such bucket: S3's own error follows the checks
            return False, None
        if not isinstance(found, FakeKey):
            return False, None
        if found.encryption == "aws:kms":
            return True, self.kms_key_arn(found.kms_key_id or "alias/aws/s3")
        return True, self.bucket_default_key(bucket) if found.encryption is None else None

    def sagemaker_tags(self, arn: str) -> list[dict[str, str]]:
        """A SageMaker resource's tags as moto keeps them (none if it does not exist: SageMaker's own error
        follows the checks)."""
        from moto.sagemaker.models import sagemaker_backends

        with contextlib.suppress(Exception):
            return list(sagemaker_backends[self.account][self.region]._get_resource_from_arn(arn).tags or [])
        return []

    def scalable_target_arn(self, namespace: str, resource_id: str, dimension: str) -> str:
        from moto.applicationautoscaling.models import applicationautoscaling_backends

        backend = applicationautoscaling_backends[self.account][self.region]
        target = backend.targets.get(dimension, {}).get(resource_id)
        if target is not None and target.service_namespace == namespace:
            return str(target.arn)
        # Not registered yet: the ARN a new registration gets (an identifier of its own, not the resource id).
        unique = uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{resource_id}/{dimension}").hex
        return f"arn:aws:application-autoscaling:{self.region}:{self.account}:scalable-target/{unique}"


# --- the operation table ---------------------------------------------------------------------------

Builder = Callable[[Request, Backends, "IamEnforcement"], list[Check]]
OPERATIONS: dict[tuple[str, str], Builder] = {}


def operation(service: str, *names: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        for name in names:
            OPERATIONS[(service, name)] = builder
        return builder

    return register


def _action(request: Request) -> str:
    return f"{request.service}:{request.operation}"


def _sagemaker(request: Request, kind: str, name: str) -> str:
    return request.arn("sagemaker", f"{kind}/{name}")


def request_tag_context(tags: Sequence[Mapping[str, str]]) -> dict[str, tuple[str, ...]]:
    """aws:RequestTag/<key> for each tag of a request, and aws:TagKeys (IAM User Guide, "Controlling access
    during AWS requests": the tags a create or tag request carries)."""
    context: dict[str, tuple[str, ...]] = {f"aws:requesttag/{tag['Key']}": (str(tag.get("Value", "")),) for tag in tags}
    if tags:
        context["aws:tagkeys"] = tuple(str(tag["Key"]) for tag in tags)
    return context


def resource_tag_context(tags: Sequence[Mapping[str, str]]) -> dict[str, tuple[str, ...]]:
    """aws:ResourceTag/<key> for each tag the resource already has (IAM User Guide, "Controlling access to
    AWS resources using tags"); SageMaker also answers its own sagemaker:ResourceTag/<key>."""
    context: dict[str, tuple[str, ...]] = {}
    for tag in tags:
        value = (str(tag.get("Value", "")),)
        context[f"aws:resourcetag/{tag['Key']}"] = value
        context[f"sagemaker:resourcetag/{tag['Key']}"] = value
    return context


def _tags(request: Request, resource: str) -> list[Check]:
    """Creating a SageMaker resource with tags needs sagemaker:AddTags on it (SAR dependent action), with
    the request's tags as its condition keys."""
    tags = request.params.get("Tags") or []
    if not tags:
        return []
    return [Check("sagemaker:AddTags", resource, request_tag_context(tags), because="the request carries Tags")]


@operation("sagemaker", "DescribeEndpoint", "UpdateEndpointWeightsAndCapacities")
def _sagemaker_endpoint(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    return [Check(_action(request), _sagemaker(request, "endpoint", request.param("EndpointName")))]


@operation("sagemaker", "DescribeEndpointConfig", "DeleteEndpointConfig")
def _sagemaker_config(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    resource = _sagemaker(request, "endpoint-config", request.param("EndpointConfigName"))
    return [Check(_action(request), resource, resource_tag_context(backends.sagemaker_tags(resource)))]


@operation("sagemaker", "DescribeModel", "DeleteModel")
def _sagemaker_model(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    resource = _sagemaker(request, "model", request.param("ModelName"))
    return [Check(_action(request), resource, resource_tag_context(backends.sagemaker_tags(resource)))]


@operation("sagemaker", "AddTags")
def _sagemaker_add_tags(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    resource = request.param("ResourceArn")
    context = {
        **resource_tag_context(backends.sagemaker_tags(resource)),
        **request_tag_context(request.params.get("Tags") or []),
    }
    return [Check(_action(request), resource, context)]


@operation("sagemaker", "UpdateEndpoint")
def _sagemaker_update_endpoint(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    return [
        Check(_action(request), _sagemaker(request, "endpoint", request.param("EndpointName"))),
        Check(_action(request), _sagemaker(request, "endpoint-config", request.param("EndpointConfigName"))),
    ]


@operation("sagemaker", "CreateEndpointConfig")
def _sagemaker_create_config(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    resource = _sagemaker(request, "endpoint-config", request.param("EndpointConfigName"))
    context = request_tag_context(request.params.get("Tags") or [])
    return [Check(_action(request), resource, context), *_tags(request, resource)]


@operation("sagemaker", "CreateModel")
def _sagemaker_create_model(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    resource = _sagemaker(request, "model", request.param("ModelName"))
    context = request_tag_context(request.params.get("Tags") or [])
    checks = [Check(_action(request), resource, context), *_tags(request, resource)]
    role = request.params.get("ExecutionRoleArn")
    if role:
        checks.append(
            Check(
                "iam:PassRole",
                str(role),
                {"iam:passedtoservice": ("sagemaker.amazonaws.com",)},
                because="the model's ExecutionRoleArn is passed to SageMaker",
            )
        )
    return checks


@operation("application-autoscaling", "DescribeScalableTargets", "DescribeScalingPolicies")
def _autoscaling_describe(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    return [Check(_action(request), "*")]


def _scalable_target(request: Request, backends: Backends) -> Check:
    namespace = request.param("ServiceNamespace")
    resource_id = request.param("ResourceId")
    dimension = request.param("ScalableDimension")
    return Check(
        _action(request),
        backends.scalable_target_arn(namespace, resource_id, dimension),
        {
            "application-autoscaling:service-namespace": (namespace,),
            "application-autoscaling:scalable-dimension": (dimension,),
        },
    )


@operation("application-autoscaling", "DeregisterScalableTarget")
def _autoscaling_deregister(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    return [_scalable_target(request, backends)]


@operation("application-autoscaling", "RegisterScalableTarget", "PutScalingPolicy")
def _autoscaling_configure(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    checks = [_scalable_target(request, backends)]
    resource_id = request.param("ResourceId")
    variant = re.fullmatch(r"endpoint/([^/]+)/variant/([^/]+)", resource_id)
    if request.param("ServiceNamespace") != "sagemaker" or variant is None:
        return checks
    endpoint = _sagemaker(request, "endpoint", variant.group(1))
    # The validation's DescribeEndpointConfig names a config of its own (CloudTrail shows a random UUID):
    # only a grant on endpoint-config/* passes it.
    probe_config = _sagemaker(request, "endpoint-config", str(uuid.uuid4()))
    if iam.aas_alarm_resource == "target-alarms":
        alarm = request.arn("cloudwatch", f"alarm:TargetTracking-{resource_id}-AlarmHigh-{uuid.uuid4()}")
    else:
        alarm = request.arn("cloudwatch", "alarm:*")
    denial = Denial(iam.aas_validation_error, 400)
    validated = [
        ("sagemaker:DescribeEndpoint", endpoint),
        ("sagemaker:DescribeEndpointConfig", probe_config),
        ("sagemaker:UpdateEndpointWeightsAndCapacities", endpoint),
        ("cloudwatch:PutMetricAlarm", alarm),
        ("cloudwatch:DescribeAlarms", alarm),
        ("cloudwatch:DeleteAlarms", alarm),
    ]
    return checks + [Check(action, resource, because=AAS_VALIDATION, denial=denial) for action, resource in validated]


@operation("dynamodb", "GetItem", "PutItem", "UpdateItem", "DeleteItem")
def _dynamodb_item(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    # A table encrypted with a customer managed key needs no KMS permission of the caller (DynamoDB
    # Developer Guide, encryption at rest: DynamoDB uses the key through its own grants).
    return [Check(_action(request), request.arn("dynamodb", f"table/{request.param('TableName')}"))]


def _queue_name(request: Request) -> str:
    return request.param("QueueUrl").rstrip("/").rsplit("/", 1)[-1]


def _kms(key_arn: str | None, actions: Sequence[str], because: str, denial: Denial) -> list[Check]:
    if key_arn is None:
        return []
    return [Check(action, key_arn, because=because, denial=denial) for action in actions]


@operation("sqs", "SendMessage")
def _sqs_send(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    name = _queue_name(request)
    return [
        Check(_action(request), request.arn("sqs", name)),
        *_kms(
            backends.queue_key(name),
            ("kms:GenerateDataKey", "kms:Decrypt"),
            "the queue is encrypted with a customer managed key (SSE-KMS)",
            Denial("KMS.AccessDeniedException", 400),
        ),
    ]


@operation("sns", "Publish")
def _sns_publish(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    topic = request.param("TopicArn")
    return [
        Check(_action(request), topic),
        *_kms(
            backends.topic_key(topic),
            ("kms:GenerateDataKey", "kms:Decrypt"),
            "the topic is encrypted with a customer managed key (SSE)",
            Denial("KMSAccessDenied", 400),
        ),
    ]


@operation("states", "GetExecutionHistory", "DescribeExecution", "StopExecution")
def _states_execution(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    return [Check(_action(request), request.param("executionArn"))]


@operation("states", "StartExecution")
def _states_start(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    return [Check(_action(request), request.param("stateMachineArn"))]


@operation("cloudwatch", "GetMetricData")
def _cloudwatch_unscoped(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    return [Check(_action(request), "*")]


@operation("cloudwatch", "DescribeAlarms", "PutMetricAlarm", "DeleteAlarms")
def _cloudwatch_alarms(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    # All three authorise on the alarm (Service Authorization Reference, CloudWatch: resource type alarm*);
    # DeleteAlarms names its alarms as DescribeAlarms does.
    # DescribeAlarms names its alarms as AlarmNames.member.N (query protocol); without names it lists all.
    if request.operation == "PutMetricAlarm":
        names = [request.param("AlarmName")]
    else:
        names = [str(value) for key, value in sorted(request.params.items()) if key.startswith("AlarmNames.member.")]
        listed = request.params.get("AlarmNames")
        if isinstance(listed, list):
            names += [str(name) for name in listed]
    resources = [request.arn("cloudwatch", f"alarm:{name}") for name in names] or [request.arn("cloudwatch", "alarm:*")]
    return [Check(_action(request), resource) for resource in resources]


@operation("lambda", "Invoke")
def _lambda_invoke(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    name = request.param("FunctionName")
    if not name.startswith("arn:"):
        name = request.arn("lambda", f"function:{name.rsplit(':function:', 1)[-1]}")
    qualifier = request.params.get("Qualifier") or (request.response.querystring.get("Qualifier") or [None])[0]
    if qualifier and name.count(":") == 6:
        name = f"{name}:{qualifier}"
    return [Check("lambda:InvokeFunction", name)]


_S3_DENIED = Denial("AccessDenied", 403)


@operation("s3", "GetObject")
def _s3_get(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    bucket, key = request.bucket_and_key
    checks = [Check("s3:GetObject", request.s3_resource)]
    exists, key_arn = backends.object_state(bucket, key)
    if not exists:
        # S3 reveals that a key is missing only to a caller that may list the bucket (GetObject,
        # "Permissions"); the request carries no s3:prefix, so a prefix-conditioned grant does not count.
        checks.append(
            Check(
                "s3:ListBucket",
                f"arn:aws:s3:::{bucket}",
                because="the key does not exist: 404 NoSuchKey only with s3:ListBucket, else 403",
                denial=Denial("AccessDenied", 403, "Access Denied"),
            )
        )
    checks += _kms(
        key_arn, ("kms:Decrypt",), "the object is encrypted with a customer managed key (SSE-KMS)", _S3_DENIED
    )
    return checks


@operation("s3", "PutObject")
def _s3_put(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    bucket, _ = request.bucket_and_key
    headers = request.response.headers
    if headers.get("x-amz-server-side-encryption") == "aws:kms":
        key_arn = backends.kms_key_arn(headers.get("x-amz-server-side-encryption-aws-kms-key-id") or "alias/aws/s3")
    elif headers.get("x-amz-server-side-encryption"):
        key_arn = None
    else:
        key_arn = backends.bucket_default_key(bucket)
    return [
        Check("s3:PutObject", request.s3_resource),
        *_kms(
            key_arn, ("kms:GenerateDataKey",), "the bucket encrypts new objects with a customer managed key", _S3_DENIED
        ),
    ]


@operation("s3", "DeleteObject")
def _s3_delete(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    return [Check("s3:DeleteObject", request.s3_resource)]


@operation("s3", "ListBucket")
def _s3_list(request: Request, backends: Backends, iam: IamEnforcement) -> list[Check]:
    context = {
        f"s3:{name}": (str(value[0]),)
        for name in ("prefix", "delimiter", "max-keys")
        if (value := request.response.querystring.get(name))
    }
    return [Check("s3:ListBucket", request.s3_resource, context)]


def sqs_poll_checks(queue_arn: str, backends: Backends) -> list[Check]:
    """What a Lambda SQS event source mapping does with the function's execution role (Lambda Developer
    Guide, SQS event source mapping: ReceiveMessage, DeleteMessage, GetQueueAttributes; kms:Decrypt for a
    queue encrypted with a customer managed key)."""
    checks = [
        Check(action, queue_arn) for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
    ]
    checks += _kms(
        backends.queue_key(queue_arn.rsplit(":", 1)[-1]),
        ("kms:Decrypt",),
        "the queue is encrypted with a customer managed key (SSE-KMS)",
        Denial("KMS.AccessDeniedException", 400),
    )
    return checks


# --- enforcement -----------------------------------------------------------------------------------


class _DeniedResponse(HTTPException):
    """A serialised error body for call_action to send (it keeps the body and the status)."""

    def __init__(self, status: int, body: Any) -> None:  # noqa: ANN401
        super().__init__(description=body)
        self.code = status
        self._body = body

    def get_body(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        return self._body

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:  # noqa: ANN401
        return []


class _AccessDenied(ServiceException):
    pass


class _S3AccessDenied(S3ClientError):
    pass


class AccessDenied(Exception):
    """Raised by IamEnforcement.check_as when the local cloud itself acts for a role and is denied."""

    def __init__(self, record: AuthorizationRecord, message: str) -> None:
        super().__init__(message)
        self.record = record


@dataclass
class IamEnforcement:
    sessions: RoleSessions
    aas_alarm_resource: AasAlarmResource = "target-alarms"
    aas_validation_error: str = "AccessDeniedException"
    records: list[AuthorizationRecord] = field(default_factory=list)
    unmodelled: list[str] = field(default_factory=list)
    backends: Backends = field(default_factory=Backends)
    _original: Any = None

    def install(self) -> Self:
        if moto.__version__ != TARGET_MOTO_VERSION:
            raise RuntimeError(f"IamEnforcement targets moto {TARGET_MOTO_VERSION}, found {moto.__version__}")
        enforcement = self
        self._original = authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action

        def authenticate_and_authorize(response: Any, iam_request_cls: type, resource: str = "*") -> None:  # noqa: ANN401
            enforcement.authorize(response, resource)

        authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate_and_authorize  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action = self._original  # type: ignore[method-assign]
            self._original = None

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[AuthorizationRecord]]:
        """The records made while the block runs."""
        start = len(self.records)
        made: list[AuthorizationRecord] = []
        try:
            yield made
        finally:
            made.extend(self.records[start:])

    # --- the hook ----------------------------------------------------------------------------------

    def authorize(self, response: Any, s3_resource: str = "*") -> None:  # noqa: ANN401
        found = CREDENTIAL.search(response.headers.get("Authorization") or "")
        if found is None:
            return  # unsigned: never one of our sessions
        access_key, region, signing_name = found.groups()
        principal = self.sessions.principal(access_key)
        if principal is None:
            return  # the operator
        service = SIGNING_NAMES.get(signing_name, signing_name)
        name = response.data.get("Action") if service == "s3" else response._get_action()
        if isinstance(name, list):
            name = name[0]
        request = Request(
            service=service,
            operation=str(name),
            method=str(response.method),
            response=response,
            s3_resource=s3_resource,
            region=region,
        )
        builder = OPERATIONS.get((service, request.operation))
        if builder is None:
            called = f"{service}:{request.operation}"
            self.unmodelled.append(f"{called} by {principal.label}")
            raise UnmodelledOperation(
                f"local cloud IAM: {principal.label} called {called}, which iam_enforcement.OPERATIONS does not"
                " describe; add it with the resources the Service Authorization Reference names"
            )
        for check in builder(request, self.backends, self):
            record = self._decide(principal, f"{service}:{request.operation}", check)
            if not record.allowed:
                self._refuse(request, record)

    def check_as(self, role_arn: str, session_name: str, label: str, operation: str, checks: Sequence[Check]) -> None:
        """Authorise what the local cloud itself does with a role (an event source mapping's polling):
        recorded like a request; raises AccessDenied on the first denial."""
        credentials = self.sessions.credentials(role_arn, session_name, label)
        principal = self.sessions.principal(credentials.access_key_id)
        assert principal is not None
        for check in checks:
            record = self._decide(principal, operation, check)
            if not record.allowed:
                raise AccessDenied(record, _message(record))

    # --- decisions ---------------------------------------------------------------------------------

    def _decide(self, principal: Principal, operation: str, check: Check) -> AuthorizationRecord:
        context = {
            "aws:securetransport": ("true",),
            "aws:principalarn": (principal.role_arn,),
            "aws:principalaccount": (self.backends.account,),
            "aws:principaltype": ("AssumedRole",),
            "aws:requestedregion": (self.backends.region,),
            **{key.lower(): values for key, values in check.context.items()},
        }
        identity = evaluate(self.role_statements(principal.role_arn), check.action, check.resource, context)
        evaluation = self._with_resource_policy(principal, check, context, identity)
        record = AuthorizationRecord(principal, operation, check, evaluation)
        self.records.append(record)
        return record

    def role_statements(self, role_arn: str) -> list[Statement]:
        """The role's inline and attached policies, as moto's IAM backend holds them now."""
        from moto.iam.models import iam_backends

        role = iam_backends[self.backends.account]["aws"].get_role(role_arn.rsplit("/", 1)[-1])
        statements: list[Statement] = []
        for name, document in role.policies.items():
            statements += parse_policy(name, document)
        for arn, policy in role.managed_policies.items():
            version = next(v for v in policy.versions if v.is_default)
            statements += parse_policy(arn, version.document)
        return statements

    def _with_resource_policy(
        self, principal: Principal, check: Check, context: Mapping[str, Sequence[str]], identity: Evaluation
    ) -> Evaluation:
        caller = Caller(principal.role_arn, principal.session_arn, self.backends.account)
        kind, document = self._resource_policy(check.resource)
        if document is None:
            return identity
        statements = parse_policy(f"resource policy of {check.resource}", document)
        naming = [s for s in statements if caller.named_by(s.principal)]
        delegating = [s for s in statements if caller.account_named_by(s.principal)]
        direct = evaluate(naming, check.action, check.resource, context)
        delegated = evaluate(delegating, check.action, check.resource, context)
        denied_by = identity.denied_by + direct.denied_by + delegated.denied_by
        if denied_by:
            return Evaluation(Decision.EXPLICIT_DENY, identity.allowed_by + direct.allowed_by, denied_by)
        if kind == "key":
            # KMS: IAM policies count only where the key policy lets the account's IAM policies govern it.
            iam_allows = identity.allowed and delegated.allowed
            allowed = direct.allowed or iam_allows
            allowed_by = direct.allowed_by + ((identity.allowed_by + delegated.allowed_by) if iam_allows else ())
        else:
            allowed = direct.allowed or identity.allowed
            allowed_by = identity.allowed_by + direct.allowed_by
        return Evaluation(Decision.ALLOW if allowed else Decision.IMPLICIT_DENY, allowed_by)

    def _resource_policy(self, resource: str) -> tuple[str, str | Mapping[str, Any] | None]:
        if resource.startswith("arn:aws:kms:"):
            return "key", self.backends.key_policy(resource)
        if resource.startswith("arn:aws:sqs:"):
            return "queue", self.backends.queue_policy(resource.rsplit(":", 1)[-1])
        if resource.startswith("arn:aws:sns:"):
            return "topic", self.backends.topic_policy(resource)
        return "", None

    def _refuse(self, request: Request, record: AuthorizationRecord) -> None:
        code, status = ACCESS_DENIED.get(request.service, ("AccessDeniedException", 400))
        denial = record.check.denial
        if denial is not None:
            code, status = denial.code, denial.status
        message = (denial.message if denial is not None else None) or _message(record)
        if request.service == "s3":
            raise _S3AccessDenied(code, message)
        from moto.core.responses import ActionResult

        with warnings.catch_warnings():  # our codes are not error shapes of every service model
            warnings.simplefilter("ignore")
            _, _, body = request.response.serialized(ActionResult(_AccessDenied(code, message)))
        raise _DeniedResponse(status, body)


def _message(record: AuthorizationRecord) -> str:
    check = record.check
    on = "" if check.resource == "*" else f" on resource: {check.resource}"
    if record.evaluation.decision is Decision.EXPLICIT_DENY:
        why = "with an explicit deny in an identity-based or resource-based policy"
    else:
        why = f"because no identity-based policy allows the {check.action} action"
    return f"User: {record.principal.session_arn} is not authorized to perform: {check.action}{on} {why}"


def allow_statements(records: Sequence[AuthorizationRecord]) -> dict[StatementRef, list[AuthorizationRecord]]:
    """Each statement that was the only grant of at least one allowed check, with those checks."""
    needed: dict[StatementRef, list[AuthorizationRecord]] = {}
    for record in records:
        identity = [ref for ref in record.evaluation.allowed_by if not ref.policy.startswith("resource policy")]
        if record.allowed and len(identity) == 1:
            needed.setdefault(identity[0], []).append(record)
    return needed
