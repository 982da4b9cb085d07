"""AWS faults injected at the SDK boundary, for the stack's own calls only; and a record of those calls.

What a fault is: one failed call is one API call that failed *after* botocore's own retries, i.e. what
the caller's code sees when every attempt its retry mode allows was refused. botocore's
`BaseClient._make_api_call` lets a `before-call.<service>.<operation>` handler answer instead of the
service: the request is never sent, so neither the retry handler nor the endpoint sees it, and an
answer with a status of 300 or more is raised as `self.exceptions.from_code(code)(parsed, operation)`.
Installed, `FaultInjector` wraps `_make_api_call` and answers exactly that way (the modelled exception
class where the service has one, `ClientError` otherwise; `ResponseMetadata` says the attempts were
exhausted), for every service: SageMaker, Application Auto Scaling, DynamoDB, S3, SNS, SQS, Step
Functions, CloudWatch, Lambda.

Whose calls: a client signed with an assumed-role session that the local cloud's `RoleSessions` made for
a function ("function ...") or for a state machine's SDK integrations ("state machine role ...": the
`sns:publish` of a Notify state, `lambda:invoke`, `aws-sdk:*`, made by moto's interpreter). The
operator's calls (tests, the CLI, the local cloud playing EventBridge or Scheduler with a rule's or a
schedule's role) are never failed nor recorded.

Where: every call is recorded with the Step Functions state in which it was made (the innermost state
being evaluated on the calling thread: moto's interpreter runs a state's task, and the Lambda function a
`lambda:invoke` task runs, on the execution's thread), its state machine and execution, so a test can
say "fail UpdateEndpoint in Restore".

Kinds (`FaultCatalogue`): the service's throttling code, its 5xx code, its own documented retryable
errors, and outages (every call to the operation fails with 503 ServiceUnavailable from the first
matching call until the clock passes the outage's end).

Sources: botocore/client.py `_make_api_call` (before-call short circuit); botocore/retries/standard.py
(`ThrottledRetryableChecker._THROTTLED_ERROR_CODES`, `TransientRetryableChecker` 500/502/503/504);
AWS SDKs and Tools reference guide, "Retry behavior"; each service's API reference (Errors / Common
errors) for the codes below.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, Literal, Protocol, Self

FaultKind = Literal["throttle", "5xx", "retryable", "outage-5m", "outage-90m", "outage-6h"]
TRANSIENT_KINDS: tuple[FaultKind, ...] = ("throttle", "5xx", "retryable")
OUTAGE_KINDS: dict[FaultKind, timedelta] = {
    "outage-5m": timedelta(minutes=5),
    "outage-90m": timedelta(minutes=90),
    "outage-6h": timedelta(hours=6),
}
STACK_CALLERS = ("function ", "state machine role ")  # RoleSessions labels of the stack's own principals


@dataclass(frozen=True)
class ServiceError:
    code: str
    status: int
    message: str


# Each service's own codes. Throttling: the code the service answers when it throttles (each is in
# botocore's throttled list); 5xx: the service's internal-error code; outages: 503 ServiceUnavailable,
# a common error of every one of these APIs.
THROTTLING: dict[str, ServiceError] = {
    "sagemaker": ServiceError("ThrottlingException", 400, "Rate exceeded"),
    "application-autoscaling": ServiceError("ThrottlingException", 400, "Rate exceeded"),
    "dynamodb": ServiceError(
        "ProvisionedThroughputExceededException",
        400,
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    "s3": ServiceError("SlowDown", 503, "Please reduce your request rate."),
    "sns": ServiceError("Throttled", 429, "Rate exceeded"),
    "sqs": ServiceError("RequestThrottled", 400, "Request is throttled."),
    "stepfunctions": ServiceError("ThrottlingException", 400, "Rate exceeded"),
    "cloudwatch": ServiceError("Throttling", 400, "Rate exceeded"),
    "lambda": ServiceError("TooManyRequestsException", 429, "Rate Exceeded."),
}
INTERNAL: dict[str, ServiceError] = {
    "sagemaker": ServiceError("InternalFailure", 500, "An internal error occurred."),
    "application-autoscaling": ServiceError("InternalServiceException", 500, "Internal service error"),
    "dynamodb": ServiceError("InternalServerError", 500, "Internal server error"),
    "s3": ServiceError("InternalError", 500, "We encountered an internal error. Please try again."),
    "sns": ServiceError("InternalError", 500, "Internal error"),
    "sqs": ServiceError("InternalFailure", 500, "An internal error occurred."),
    "stepfunctions": ServiceError("InternalFailure", 500, "An internal error occurred."),
    "cloudwatch": ServiceError("InternalServiceError", 500, "Internal service error"),
    "lambda": ServiceError("ServiceException", 500, "An internal error occurred."),
}
OUTAGE = ServiceError("ServiceUnavailable", 503, "Service is unavailable. Please try again later.")
# The services' own retryable errors beyond throttling and 5xx, by (service, operation); "*": every operation.
RETRYABLE: dict[tuple[str, str], ServiceError] = {
    # SageMaker: any update while the endpoint is Updating (DESIGN.md, checked behaviour).
    ("sagemaker", "UpdateEndpoint"): ServiceError("ValidationException", 400, "Cannot update in-progress endpoint"),
    ("sagemaker", "UpdateEndpointWeightsAndCapacities"): ServiceError(
        "ValidationException", 400, "Cannot update in-progress endpoint"
    ),
    ("sagemaker", "DeleteEndpoint"): ServiceError("ValidationException", 400, "Cannot update in-progress endpoint"),
    # Application Auto Scaling: "Concurrent updates caused an exception", documented for every target
    # and policy operation (API reference, Errors), and retryable (DESIGN.md).
    ("application-autoscaling", "*"): ServiceError(
        "ConcurrentUpdateException",
        400,
        "Concurrent updates caused an exception, for example, if you request an "
        "update to an Application Auto Scaling resource that already has a pending update.",
    ),
    # DynamoDB: a write conflicting with an ongoing transaction on the item (TransactionConflictException).
    ("dynamodb", "PutItem"): ServiceError("TransactionConflictException", 400, "Transaction is ongoing for the item"),
    ("dynamodb", "UpdateItem"): ServiceError(
        "TransactionConflictException", 400, "Transaction is ongoing for the item"
    ),
    ("dynamodb", "DeleteItem"): ServiceError(
        "TransactionConflictException", 400, "Transaction is ongoing for the item"
    ),
    ("dynamodb", "TransactWriteItems"): ServiceError(
        "TransactionCanceledException",
        400,
        "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
    ),
}


def retryable_error(service: str, operation: str) -> ServiceError | None:
    return RETRYABLE.get((service, operation)) or RETRYABLE.get((service, "*"))


def kinds_for(service: str, operation: str) -> list[FaultKind]:
    """Every fault kind that applies to an operation (retryable only where the service documents one)."""
    kinds: list[FaultKind] = ["throttle", "5xx"]
    if retryable_error(service, operation) is not None:
        kinds.append("retryable")
    kinds.extend(OUTAGE_KINDS)
    return kinds


# --- where a call is made ------------------------------------------------------------------------


@dataclass(frozen=True)
class StateFrame:
    execution_arn: str
    state_machine: str
    state: str
    execution_input: str


def current_frame() -> StateFrame | None:
    """The Step Functions state the calling code runs in: the nearest interpreter frame up this thread's
    stack that evaluates a state (moto's `Environment` named `env`; a Task's work runs on a thread of its
    own, and the function a `lambda:invoke` task runs is called from that thread)."""
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        names: Mapping[str, Any] = frame.f_locals
        env = names.get("env")
        if isinstance(env, Environment):
            data: Mapping[str, Any] = env.states.context_object.context_object_data
            state: Mapping[str, Any] = data.get("State") or {}
            name = state.get("Name")
            if name:
                return _frame_of(env, str(name))
        frame = frame.f_back
    return None


def _frame_of(env: Any, state: str) -> StateFrame:  # noqa: ANN401  (moto's Environment)
    data = env.states.context_object.context_object_data
    execution = data.get("Execution", {})
    return StateFrame(
        execution_arn=str(execution.get("Id", "")),
        state_machine=str(data.get("StateMachine", {}).get("Name", "")),
        state=state,
        execution_input=json.dumps(execution.get("Input"), default=str),
    )


@dataclass(frozen=True)
class CallSite:
    """Where an operation is called: by whom, in which state machine's state (None: outside any execution)."""

    service: str
    operation: str
    caller: str
    state_machine: str | None
    state: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "service": self.service,
            "operation": self.operation,
            "caller": self.caller,
            "state_machine": self.state_machine,
            "state": self.state,
        }


@dataclass(frozen=True)
class RecordedCall:
    site: CallSite
    at: datetime
    execution_arn: str | None
    execution_input: str | None
    params: dict[str, Any]
    failed_with: str | None


# --- what to do to a call ------------------------------------------------------------------------


class Principals(Protocol):
    def principal(self, access_key_id: str) -> Any: ...  # noqa: ANN401  (iam_enforcement.Principal | None)


CallFilter = Callable[[RecordedCall], bool]


@dataclass
class Fault:
    """Fail calls of `service` (`operation`, or all of them when None) made in `state` (anywhere when None).

    Transient (`times`): the next `times` matching calls fail. Outage (`lasts`): from the first matching
    call every call to the operation fails, in any state, until the clock passes the outage's end."""

    service: str
    operation: str | None
    error: ServiceError
    state: str | None = None
    times: int | None = None
    lasts: timedelta | None = None
    applies: CallFilter | None = None  # e.g. only the calls of one test's executions
    label: str = ""
    injected: int = 0
    began: datetime | None = None

    def matches(self, call: RecordedCall) -> bool:
        if call.site.service != self.service or (self.operation is not None and call.site.operation != self.operation):
            return False
        return self.applies is None or self.applies(call)

    def decide(self, call: RecordedCall, now: datetime) -> ServiceError | None:
        if not self.matches(call):
            return None
        if self.lasts is not None:
            if self.began is None:
                if self.state is not None and call.site.state != self.state:
                    return None
                self.began = now
            if now < self.began + self.lasts:
                self.injected += 1
                return self.error
            return None
        if self.state is not None and call.site.state != self.state:
            return None
        if self.times is not None and self.injected < self.times:
            self.injected += 1
            return self.error
        return None

    @property
    def ended(self) -> bool:
        return self.times is not None and self.injected >= self.times


@dataclass
class Trigger:
    """Run `action` before or after the `nth` (1-based) call matching `service`/`operation`/`state`
    (e.g. make an UpdateEndpoint stall, or stop the execution once a state has done its work)."""

    service: str
    operation: str
    action: Callable[[RecordedCall], None]
    state: str | None = None
    nth: int = 1
    when: Literal["before", "after"] = "before"
    applies: CallFilter | None = None
    seen: int = 0
    fired: bool = False

    def counts(self, call: RecordedCall) -> bool:
        if (call.site.service, call.site.operation) != (self.service, self.operation):
            return False
        if self.state is not None and call.site.state != self.state:
            return False
        return self.applies is None or self.applies(call)


def make_fault(
    kind: FaultKind,
    service: str,
    operation: str,
    *,
    state: str | None = None,
    times: int = 2,
    applies: CallFilter | None = None,
) -> Fault:
    """A fault of `kind` on one operation (transient kinds: `times` consecutive failed calls)."""
    if kind in OUTAGE_KINDS:
        return Fault(service, operation, OUTAGE, state=state, lasts=OUTAGE_KINDS[kind], applies=applies, label=kind)
    if kind == "throttle":
        error = THROTTLING[service]
    elif kind == "5xx":
        error = INTERNAL[service]
    else:
        found = retryable_error(service, operation)
        if found is None:
            raise ValueError(f"{service}:{operation} documents no retryable error of its own")
        error = found
    return Fault(service, operation, error, state=state, times=times, applies=applies, label=kind)


# --- the injector --------------------------------------------------------------------------------


@dataclass
class FaultInjector:
    """Installed: records every call the stack's principals make and fails those `faults` match."""

    principals: Principals
    now: Callable[[], datetime]
    faults: list[Fault] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    calls: list[RecordedCall] = field(default_factory=list)
    recording: bool = True
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _originals: dict[str, Any] = field(default_factory=dict)

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def on_call(self, trigger: Trigger) -> Trigger:
        with self._lock:
            self.triggers.append(trigger)
        return trigger

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.triggers.clear()
            self.calls.clear()

    def sites(self) -> list[CallSite]:
        """Every distinct call site recorded, in the order first seen."""
        return list(dict.fromkeys(call.site for call in self.calls))

    # --- installation -----------------------------------------------------------------------

    def install(self) -> Self:
        if self._originals:
            return self
        from botocore.client import BaseClient

        injector = self
        original_call = BaseClient.__dict__["_make_api_call"]
        self._originals = {"call": original_call}

        def make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:  # noqa: ANN401
            caller = injector._caller(client)
            if caller is None:
                return original_call(client, operation_name, api_params)
            return injector._call(client, caller, operation_name, api_params, original_call)

        setattr(BaseClient, "_make_api_call", make_api_call)  # noqa: B010  (botocore has no stub for it)
        return self

    def uninstall(self) -> None:
        if not self._originals:
            return
        from botocore.client import BaseClient

        setattr(BaseClient, "_make_api_call", self._originals["call"])  # noqa: B010
        self._originals = {}

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    # --- per call ---------------------------------------------------------------------------

    def _caller(self, client: Any) -> str | None:  # noqa: ANN401
        credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
        access_key = getattr(credentials, "access_key", None)
        if not access_key:
            return None
        principal = self.principals.principal(str(access_key))
        label = getattr(principal, "label", None)
        if not isinstance(label, str) or not label.startswith(STACK_CALLERS):
            return None
        return label

    def _call(
        self,
        client: Any,  # noqa: ANN401
        caller: str,
        operation_name: str,
        api_params: dict[str, Any],
        original: Callable[[Any, str, dict[str, Any]], Any],
    ) -> Any:  # noqa: ANN401
        frame = current_frame()
        site = CallSite(
            service=str(client.meta.service_model.service_name),
            operation=operation_name,
            caller=caller,
            state_machine=frame.state_machine if frame else None,
            state=frame.state if frame else None,
        )
        call = RecordedCall(
            site=site,
            at=self.now(),
            execution_arn=frame.execution_arn if frame else None,
            execution_input=frame.execution_input if frame else None,
            params=dict(api_params),
            failed_with=None,
        )
        with self._lock:
            before = [t for t in self.triggers if not t.fired and t.counts(call)]
            for trigger in before:
                trigger.seen += 1
            error = next((found for fault in self.faults if (found := fault.decide(call, self.now()))), None)
        for trigger in before:
            if trigger.when == "before" and trigger.seen == trigger.nth:
                trigger.fired = True
                trigger.action(call)
        if error is not None:
            self._record(RecordedCall(**{**call.__dict__, "failed_with": error.code}))
            raise self._client_error(client, operation_name, error)
        self._record(call)
        try:
            return original(client, operation_name, api_params)
        finally:
            for trigger in before:
                if trigger.when == "after" and trigger.seen == trigger.nth:
                    trigger.fired = True
                    trigger.action(call)

    def _record(self, call: RecordedCall) -> None:
        if self.recording:
            with self._lock:
                self.calls.append(call)

    @staticmethod
    def _client_error(client: Any, operation_name: str, error: ServiceError) -> Exception:  # noqa: ANN401
        """What botocore raises for a before-call answer with this status (client.py, _make_api_call)."""
        retries = getattr(client.meta.config, "retries", None) or {}
        attempts = int(retries.get("total_max_attempts") or (int(retries.get("max_attempts", 2)) + 1))
        parsed: dict[str, Any] = {
            "Error": {"Code": error.code, "Message": error.message},
            "ResponseMetadata": {
                # moto's Step Functions interpreter reads RequestId when an SDK integration fails.
                "RequestId": str(uuid.uuid4()),
                "HTTPStatusCode": error.status,
                "HTTPHeaders": {},
                "MaxAttemptsReached": True,
                "RetryAttempts": max(0, attempts - 1),
            },
        }
        if error.code == "TransactionCanceledException":
            parsed["CancellationReasons"] = [{"Code": "TransactionConflict", "Message": error.message}]
        error_class = client.exceptions.from_code(error.code)
        made: Exception = error_class(parsed, operation_name)
        return made
