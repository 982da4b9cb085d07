"""Run our Lambda functions in this process wherever moto would start a Docker container.

moto (5.2.5) runs function code in exactly one place, `LambdaFunction._invoke_lambda`. Replaced, every
invocation moto makes (Invoke, state-machine `lambda:invoke` tasks, SQS event source mappings, S3
notifications) runs the function's own `app.py` from its CodeUri folder, with the function's
environment from the template, and its boto3 calls reach the same moto backends. An exception's class
name becomes the `errorType` Step Functions matches in `ErrorEquals`.

Given `credentials` (the local cloud's RoleSessions), each function runs under its own execution role:
its AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN are those of an assumed-role session
of the role moto keeps for it. They are what botocore's environment provider finds *on the function's
thread* while it runs, never put in os.environ: the operator's own calls in this process (the CLI, a
test), made on other threads meanwhile, keep the operator's credentials. Settings and boto3 clients
are cached per container in Lambda; here one process plays every container, so they are rebuilt whenever
the function that runs needs another environment than the one they were built with: a client built for
one function is never used under another's credentials.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from botocore import credentials as botocore_credentials
from moto.awslambda import models as lambda_models
from shadowscale.shared.clock import Clock
from shadowscale.shared.settings import get_settings

Handler = Callable[[dict[str, Any], Any], Any]

CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# (role ARN, function name) → the function's AWS_* credential variables
Credentials = Callable[[str, str], Mapping[str, str]]

# Values the Lambda service sets; the function's own environment is applied on top.
RUNTIME_ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "POWERTOOLS_TRACE_DISABLED": "1",  # no X-Ray daemon here
}


class _ThreadCredentials(threading.local):
    """The credential variables of the function running on this thread, None on any other thread."""

    values: Mapping[str, str] | None = None


_THREAD_CREDENTIALS = _ThreadCredentials()
_ENVIRONMENT_LOAD = botocore_credentials.EnvProvider.load


def _load_thread_credentials(provider: botocore_credentials.EnvProvider) -> botocore_credentials.Credentials | None:
    # Lambda gives each container its own process environment; here every container shares one, so the
    # function's credentials live on its thread and only the process-environment provider reads them.
    values = _THREAD_CREDENTIALS.values
    if values is None or provider.environ is not os.environ:
        return _ENVIRONMENT_LOAD(provider)
    return botocore_credentials.Credentials(
        values["AWS_ACCESS_KEY_ID"],
        values["AWS_SECRET_ACCESS_KEY"],
        values.get("AWS_SESSION_TOKEN") or None,
        method=provider.METHOD,
    )


def load_module(code_dir: Path, handler: str = "app.lambda_handler") -> ModuleType:
    """The function's own module, loaded from its CodeUri folder as Lambda loads it (one per container)."""
    module_name = handler.rsplit(".", 1)[0]
    path = code_dir / f"{module_name.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(f"{code_dir.name}__{module_name}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no handler module at {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CompositionRoot(Protocol):
    def __call__(self) -> object: ...

    def cache_clear(self) -> None: ...


def on_clock(module: ModuleType, clock: Clock) -> Callable[[], None]:
    """Give one handler module (one container) its own composition root on `clock`.

    Every handler calls `entrypoints()`, its capability's cached composition root, which builds with wall
    time; its wiring module's `build_entrypoints(settings, clock)` takes the clock as an argument. This
    binds the module's name to a root built with the local cloud's clock, so nothing is set globally and
    other containers are untouched. Returns the undo."""
    original: CompositionRoot = module.entrypoints
    build = sys.modules[original.__module__].build_entrypoints

    @cache
    def entrypoints() -> object:
        return build(get_settings(), clock)

    setattr(module, "entrypoints", entrypoints)  # noqa: B010  (a module attribute, not a typed field)

    def undo() -> None:
        setattr(module, "entrypoints", original)  # noqa: B010

    return undo


def rebuild(module: ModuleType) -> None:
    """Drop what the module's composition root built (new settings or credentials: a new container)."""
    root: CompositionRoot = module.entrypoints
    root.cache_clear()


def _set_variables(values: Mapping[str, str | None]) -> None:
    """Set each variable; an empty or None value removes it (no empty AWS_SESSION_TOKEN)."""
    for key, value in values.items():
        if value:
            os.environ[key] = value
        else:
            os.environ.pop(key, None)


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Invocation:
    function_name: str
    event: Any
    result: Any
    error_type: str | None
    log_lines: list[str]


@dataclass
class InProcessLambdaRuntime:
    code_dirs: Mapping[str, Path]
    log_groups: Mapping[str, str] = field(default_factory=dict)
    extra_environment: Mapping[str, str] = field(default_factory=dict)
    invocations: list[Invocation] = field(default_factory=list)
    log_sink: io.TextIOBase | None = None
    credentials: Credentials | None = None
    clock: Clock | None = None  # the functions' time; None: wall time
    _containers: dict[str, ModuleType] = field(default_factory=dict)
    _built: dict[str, str] | None = None  # the environment the cached settings and clients were built from
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _original: Any = None

    def install(self) -> InProcessLambdaRuntime:
        runtime = self
        self._original = lambda_models.LambdaFunction._invoke_lambda

        def _invoke_lambda(function: lambda_models.LambdaFunction, event: Any = None) -> tuple[str, bool, str]:  # noqa: ANN401
            return runtime.invoke(function, event)

        lambda_models.LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign,assignment]
        botocore_credentials.EnvProvider.load = _load_thread_credentials  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            lambda_models.LambdaFunction._invoke_lambda = self._original  # type: ignore[method-assign]
            self._original = None
            botocore_credentials.EnvProvider.load = _ENVIRONMENT_LOAD  # type: ignore[method-assign]

    def invoke(self, function: lambda_models.LambdaFunction, event: Any) -> tuple[str, bool, str]:  # noqa: ANN401
        """What moto expects back: (payload JSON, errored, log text)."""
        name = function.function_name
        if name not in self.code_dirs:
            raise KeyError(f"local cloud has no code for function {name!r}")
        payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
        session = dict(self.credentials(function.role, name)) if self.credentials and function.role else {}
        with self._lock, self._function_environment(name, {**dict(function.environment_vars or {}), **session}):
            entry = function.handler or "app.lambda_handler"
            module = self._containers.get(name) or self._containers.setdefault(name, self._start(name, entry))
            handler: Handler = getattr(module, entry.rsplit(".", 1)[1])
            captured = io.StringIO()
            error_type: str | None = None
            with self._capture(captured):
                try:
                    result: Any = handler(
                        payload, LambdaContext(function_name=name, log_group_name=self.log_groups.get(name, ""))
                    )
                except Exception as exc:  # the function's failure is its caller's to see, as in Lambda
                    error_type = type(exc).__name__
                    result = {
                        "errorType": error_type,
                        "errorMessage": str(exc),
                        "stackTrace": traceback.format_exception(exc)[-6:],
                    }
        lines = captured.getvalue().splitlines()
        self._write_logs(function, name, lines)
        self.invocations.append(Invocation(name, payload, result, error_type, lines))
        return json.dumps(result, default=str), error_type is not None, "\n".join(lines)

    def _start(self, name: str, handler: str) -> ModuleType:
        module = load_module(self.code_dirs[name], handler)
        if self.clock is not None:
            on_clock(module, self.clock)
        return module

    @contextlib.contextmanager
    def _function_environment(self, name: str, variables: dict[str, str]) -> Iterator[None]:
        """Set the function's environment; settings and clients are rebuilt only when it really differs
        from the one they were built with. The credentials are the function's only while it runs."""
        from shadowscale_localcloud.resources import apply_environment

        wanted = {**RUNTIME_ENVIRONMENT, **variables, **self.extra_environment}
        wanted.setdefault("AWS_SESSION_TOKEN", "")
        credentials = {key: wanted.pop(key) for key in CREDENTIAL_VARIABLES}
        # Clients and settings were built under the credentials as well: another role is another container.
        built = {**wanted, **credentials}
        stale = built != self._built or any(os.environ.get(key) != value for key, value in wanted.items())
        _set_variables(wanted)
        previous = _THREAD_CREDENTIALS.values
        _THREAD_CREDENTIALS.values = credentials
        try:
            if stale:
                apply_environment({key: value for key, value in wanted.items() if value})
                for container in self._containers.values():
                    rebuild(container)
                self._built = built
                from shadowscale.shared.observability import logger

                # In Lambda the level is read when the module is imported; here the module is already loaded.
                logger.setLevel(os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"))
            os.environ["AWS_LAMBDA_FUNCTION_NAME"] = name
            yield
        finally:
            _THREAD_CREDENTIALS.values = previous

    @contextlib.contextmanager
    def _capture(self, buffer: io.StringIO) -> Iterator[None]:
        from shadowscale.shared.observability import logger

        handler = logger.registered_handler
        previous = handler.setStream(buffer)  # type: ignore[attr-defined]
        try:
            with contextlib.redirect_stdout(buffer):
                yield
        finally:
            handler.setStream(previous)  # type: ignore[attr-defined]

    def _write_logs(self, function: lambda_models.LambdaFunction, name: str, lines: list[str]) -> None:
        if self.log_sink is not None:
            # stdout is the process's: a line another thread printed meanwhile (the CLI) is not the function's.
            for line in lines:
                if _is_json_object(line):
                    self.log_sink.write(line + "\n")
        if not lines:
            return
        group = self.log_groups.get(name, function.logs_group_name)
        logs = function.logs_backend
        stream = f"local/{uuid.uuid4().hex[:12]}"
        with contextlib.suppress(Exception):
            logs.ensure_log_group(group)
        logs.create_log_stream(group, stream)
        from moto.core.utils import unix_time_millis

        logs.put_log_events(group, stream, [{"timestamp": int(unix_time_millis()), "message": line} for line in lines])


def _is_json_object(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
