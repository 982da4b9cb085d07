"""The one place Logger, Tracer and Metrics are created; everything else imports them from here.

Powertools reads POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE from the environment, and
tests switch tracing off with POWERTOOLS_TRACE_DISABLED, so creating them at import is safe.

The Tracer's provider is the X-Ray SDK's recorder, imported on the first invocation rather than at import:
`Tracer()` with its default provider imports aws_xray_sdk.core (asyncio, wrapt) and patches botocore in the
init phase, a cost every cold start paid even for work that never reaches AWS. The patch is class-level
(BaseClient._make_api_call), so clients created before it are traced all the same.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

if TYPE_CHECKING:
    import numbers
    from collections.abc import AsyncIterator, Iterator, Sequence

SERVICE = "shadowscale"


class DeferredXRayProvider(BaseProvider):
    """Powertools' X-Ray provider, loaded on first use: same recorder, same patches, same streaming.

    Tracer asks its provider to patch at construction; the modules are remembered and patched when the
    recorder loads, which is the first subsegment (the handler's own, opened before any AWS call).
    """

    def __init__(self) -> None:
        self._recorder: Any = None
        self._modules: list[str] = []
        self._everything = False

    @property
    def loaded(self) -> bool:
        return self._recorder is not None

    def recorder(self) -> Any:  # noqa: ANN401  (the SDK is untyped)
        if self._recorder is None:
            from aws_xray_sdk import global_sdk_config
            from aws_xray_sdk.core import patch, patch_all, xray_recorder

            if global_sdk_config.sdk_enabled():
                # What Tracer does for its own X-Ray provider: send subsegments one by one, not batched
                # (powertools-lambda-python issue 283).
                xray_recorder.configure(streaming_threshold=0)
            if self._everything:
                patch_all()
            elif self._modules:
                patch(self._modules)
            self._recorder = xray_recorder
        return self._recorder

    @contextlib.contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[BaseSegment]:  # noqa: ANN401
        with self.recorder().in_subsegment(name=name, **kwargs) as subsegment:
            yield subsegment

    @contextlib.asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:  # noqa: ANN401
        async with self.recorder().in_subsegment_async(name=name, **kwargs) as subsegment:
            yield subsegment

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        self.recorder().put_annotation(key=key, value=value)

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:  # noqa: ANN401
        self.recorder().put_metadata(key=key, value=value, namespace=namespace)

    def patch(self, modules: Sequence[str]) -> None:
        self._modules.extend(module for module in modules if module not in self._modules)
        if self._recorder is not None:
            from aws_xray_sdk.core import patch

            patch(self._modules)

    def patch_all(self) -> None:
        self._everything = True
        if self._recorder is not None:
            from aws_xray_sdk.core import patch_all

            patch_all()


logger = Logger(service=SERVICE)
# Only botocore is patched: the default also patches requests and httpx, which the functions never use.
tracer = Tracer(service=SERVICE, patch_modules=["botocore"], provider=DeferredXRayProvider())
metrics = Metrics(service=SERVICE)
