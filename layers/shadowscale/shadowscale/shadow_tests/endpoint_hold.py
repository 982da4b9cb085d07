"""The exclusive writer hold a shadow test takes on its endpoint's lease while it changes the endpoint.

Between changes the test lets go, so the autopilot keeps resizing production during the bake; a change of
the autopilot's that meets the hold waits for it (the autopilot defers) and is applied right after.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from shadowscale.shadow_tests.models import ShadowTestPlan
from shadowscale.shadow_tests.time_limits import LEASE_MARGIN_SECONDS
from shadowscale.shared.clock import Clock
from shadowscale.shared.endpoint_lease import EndpointStateStore
from shadowscale.shared.errors import EndpointHeld, EndpointLocked, LockLost


@dataclass(frozen=True)
class WriterHold:
    leases: EndpointStateStore
    clock: Clock

    def take(self, plan: ShadowTestPlan, seconds: int | None = None, *, extra_seconds: int = 0) -> None:
        """Taken before each change of the endpoint (taking it again is a no-op); EndpointHeld, which the
        machine retries, while an autopilot invocation holds it. Held `seconds`, or the usual patience plus
        `extra_seconds`."""
        patience = seconds or (3 * plan.request.in_service_timeout_minutes * 60 + LEASE_MARGIN_SECONDS + extra_seconds)
        try:
            self.leases.acquire(plan.endpoint, plan.owner, patience, self.clock.now())
        except EndpointLocked as held:
            raise EndpointHeld(f"endpoint {plan.endpoint!r} is held by {held.owner!r} for a moment") from held

    def let_go(self, endpoint: str, owner: str) -> None:
        # LockLost: it had expired, so nobody holds it for us any more, which is what letting go means.
        with contextlib.suppress(LockLost):
            self.leases.release(endpoint, owner, None)
