"""`shadowscale clock`: the local cloud's simulated time, read from GET {endpoint-url}/_shadowscale/clock.

The local cloud's clock runs ahead of wall time, so "now" on it is not the machine's now. The route is the
local server's own (not an AWS API); against AWS it does not exist, and the command says so.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, ValidationError

from shadowscale.cli.errors import AwsProblem, NotFound, UsageProblem

CLOCK_PATH = "/_shadowscale/clock"
TIMEOUT_SECONDS = 5


class LocalClock(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    now: datetime
    speed: float
    stack: str | None = None


def read_clock(endpoint_url: str | None) -> LocalClock:
    if not endpoint_url:
        raise UsageProblem(
            "not pointed at a local cloud: pass --endpoint-url http://localhost:5000 or set AWS_ENDPOINT_URL "
            "(start one with `make local-up`)"
        )
    url = endpoint_url.rstrip("/") + CLOCK_PATH
    if not url.startswith(("http://", "https://")):
        raise UsageProblem(f"--endpoint-url {endpoint_url!r} is not an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310  (scheme checked above)
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise NotFound(
            f"{endpoint_url} has no {CLOCK_PATH} (HTTP {exc.code}): it is not a shadowscale local cloud"
        ) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AwsProblem(
            f"cannot reach {endpoint_url} ({reason}): is the local cloud running (`make local-up`)?"
        ) from exc
    try:
        return LocalClock.model_validate_json(body)
    except ValidationError as exc:
        raise NotFound(
            f"{url} did not answer with the local cloud's clock (JSON with now and speed): "
            f"{exc.error_count()} problem(s)"
        ) from exc


def show_clock(endpoint_url: str | None, output: str) -> int:
    clock = read_clock(endpoint_url)
    now = clock.now.astimezone(UTC)
    if output == "json":
        document = {"now": now.isoformat(), "speed": clock.speed, "stack": clock.stack}
        print(json.dumps(document, indent=2, sort_keys=True))
        return 0
    ahead = (now - datetime.now(UTC)).total_seconds()
    print(f"{now.isoformat()}  (x{clock.speed:g} wall speed, {_ahead(ahead)})")
    return 0


def _ahead(seconds: float) -> str:
    if abs(seconds) < 1:
        return "level with wall time"
    hours, rest = divmod(int(abs(seconds)), 3600)
    span = f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
    return f"{span} {'ahead of' if seconds > 0 else 'behind'} wall time"
