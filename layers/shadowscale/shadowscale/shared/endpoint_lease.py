"""The endpoint's lease and memory as the domain sees them: a port, with no AWS in it.

One writer at a time changes an endpoint: an autopilot decision (owner `autopilot:<uuid>`), a policy handover
or a shadow test (owner `shadow-test:<execution ARN>`). The DynamoDB adapter is shared.endpoint_state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shadowscale.shared.endpoint import EndpointMemory


class EndpointStateStore(Protocol):
    def acquire(self, endpoint: str, owner: str, lease_seconds: int, now: datetime) -> EndpointMemory:
        """Take the endpoint's lease and return its memory; raises EndpointLocked if someone else holds it."""
        ...

    def release(self, endpoint: str, owner: str, memory: EndpointMemory | None) -> None:
        """Drop the lease, saving `memory` unless it is None; raises LockLost if the lease was taken over."""
        ...

    def peek(self, endpoint: str) -> EndpointMemory:
        """The endpoint's memory as stored now, without the lease (to decide read-only while it is held)."""
        ...
