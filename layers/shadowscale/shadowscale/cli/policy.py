"""`shadowscale policy validate|apply|show|status|delete`: what each command does, apart from its options."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shadowscale.capacity.policy import CapacityPolicy, VariantPolicy, parse_policy
from shadowscale.cli.errors import NotFound
from shadowscale.shared.errors import InvalidPolicy

ClientFactory = Callable[[argparse.Namespace, str], Any]


def load_policy_file(path: Path) -> CapacityPolicy:
    """YAML or JSON → validated policy; every problem is an InvalidPolicy naming the file and field."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidPolicy(f"{path}: cannot read: {exc.strerror}") from exc
    import yaml  # the cli extra; Lambda functions never parse YAML

    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidPolicy(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    try:
        return parse_policy(document)
    except InvalidPolicy as exc:
        raise InvalidPolicy(f"{path}: {exc}") from exc


def emit(args: argparse.Namespace, document: object, text: list[str]) -> None:
    """--output json prints `document` (stable keys, sorted); text prints the lines for people."""
    if getattr(args, "output", "text") == "json":
        print(json.dumps(document, indent=2, sort_keys=True, default=str))
    else:
        print("\n".join(text))


class PolicyCommands:
    def __init__(self, args: argparse.Namespace, client: ClientFactory) -> None:
        self._args = args
        self._client = client

    def client(self, service: str) -> Any:  # noqa: ANN401  (boto3 clients are untyped here)
        return self._client(self._args, service)

    def _wiring_and_repository(self) -> tuple[Any, Any, Any]:
        from shadowscale.capacity.policy_store import PolicyRepository
        from shadowscale.cli.policy_wiring import PolicyWiring, StackOutputs

        outputs = StackOutputs.from_stack(self.client("cloudformation"), self._args.stack_name)
        wiring = PolicyWiring(outputs, self.client("scheduler"), self.client("events"))
        return outputs, wiring, PolicyRepository(self.client("dynamodb"), outputs.PolicyTableName)

    def describe_endpoint(self, endpoint: str) -> dict[str, Any]:
        """DescribeEndpoint; a missing endpoint is NotFound naming it (SageMaker says ValidationException)."""
        sagemaker = self.client("sagemaker")
        try:
            described: dict[str, Any] = sagemaker.describe_endpoint(EndpointName=endpoint)
        except sagemaker.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ValidationException":
                raise NotFound(f"endpoint {endpoint!r} not found in {sagemaker.meta.region_name}") from exc
            raise
        return described

    def _check_endpoint(self, policy: CapacityPolicy) -> tuple[list[str], dict[str, Any] | None]:
        """Refuse a policy naming variants the endpoint does not have; warn about alarms that do not exist."""
        try:
            described = self.describe_endpoint(policy.endpoint)
        except NotFound as exc:
            if self._args.allow_missing_endpoint:
                return [f"endpoint {policy.endpoint!r} does not exist yet"], None
            raise InvalidPolicy(f"{exc} (use --allow-missing-endpoint)") from exc
        present = {variant["VariantName"] for variant in described.get("ProductionVariants", [])}
        for index, variant in enumerate(policy.variants):
            if variant.name not in present:
                raise InvalidPolicy(
                    f"variants.{index}.name: endpoint {policy.endpoint!r} has no variant {variant.name!r} "
                    f"(it has {', '.join(sorted(present))})"
                )
        warnings: list[str] = []
        if policy.alarm_names:
            cloudwatch = self.client("cloudwatch")
            found = {
                alarm["AlarmName"]
                for alarm in cloudwatch.describe_alarms(AlarmNames=list(policy.alarm_names)).get("MetricAlarms", [])
            }
            warnings += [f"alarm {name!r} does not exist yet" for name in policy.alarm_names if name not in found]
        return warnings, described

    # --- commands ---------------------------------------------------------------------------------

    def validate(self) -> int:
        policy = load_policy_file(Path(self._args.file))
        emit(
            self._args,
            {"file": self._args.file, "valid": True, "endpoint": policy.endpoint, "variants": len(policy.variants)},
            [f"{self._args.file}: valid policy for endpoint {policy.endpoint!r} ({len(policy.variants)} variant(s))"],
        )
        return 0

    def apply(self) -> int:
        policy = load_policy_file(Path(self._args.file))
        warnings, described = self._check_endpoint(policy)
        outputs, wiring, repository = self._wiring_and_repository()
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if self._args.dry_run:
            plan = wiring.plan(policy, policy.endpoint)
            print(f"would store policy for {policy.endpoint!r}")
            print("\n".join(plan.lines()))
            if described is not None:
                print("capacity, as the heartbeat and the schedules will set it:")
                print("\n".join(self._preview(policy, outputs, described)))
            return 0
        revision = repository.put(policy)
        plan = wiring.apply(policy)
        print(f"stored policy for {policy.endpoint!r} as revision {revision}")
        print("\n".join(plan.lines()))
        return 0

    def _preview(self, policy: CapacityPolicy, outputs: Any, described: dict[str, Any]) -> list[str]:  # noqa: ANN401
        from shadowscale.cli.capacity_preview import preview, preview_lines
        from shadowscale.shared.endpoint_state import read_memory
        from shadowscale.shared.sagemaker import SageMakerEndpoints

        observation = SageMakerEndpoints(self.client("sagemaker")).describe_endpoint(policy.endpoint)
        memory, _ = read_memory(self.client("dynamodb"), outputs.EndpointStateTableName, policy.endpoint)
        return preview_lines(preview(policy, observation, memory, datetime.now(UTC)))

    def show(self) -> int:
        _, _, repository = self._wiring_and_repository()
        stored = repository.describe(self._args.endpoint)
        if stored is None:
            raise NotFound(f"no policy stored for {self._args.endpoint!r}")
        self._warn_missing_variants(stored.policy, self._describe_or_warn(self._args.endpoint))
        document = stored.policy.model_dump(mode="json", by_alias=True, exclude_none=True)
        header = f"# revision {stored.revision}, applied {stored.applied_at or 'at an unknown time'}"
        header += f" by {stored.applied_by}" if stored.applied_by else ""
        lines = [header] + ([f"# reason: {stored.reason}"] if stored.reason else []) + [json.dumps(document, indent=2)]
        emit(
            self._args,
            {
                "revision": stored.revision,
                "appliedAt": stored.applied_at,
                "appliedBy": stored.applied_by,
                "reason": stored.reason,
                "policy": document,
            },
            lines,
        )
        return 0

    def _describe_or_warn(self, endpoint: str) -> dict[str, Any] | None:
        try:
            return self.describe_endpoint(endpoint)
        except NotFound as exc:
            print(f"WARNING: {exc}", file=sys.stderr)
            return None

    @staticmethod
    def _warn_missing_variants(policy: CapacityPolicy, described: dict[str, Any] | None) -> None:
        """Loud, on stderr: a policy variant the endpoint does not have is never scaled."""
        if described is None:
            return
        present = {variant["VariantName"] for variant in described.get("ProductionVariants", [])}
        for variant in policy.variants:
            if variant.name not in present:
                print(
                    f"WARNING: the policy names variant {variant.name!r}, which endpoint {policy.endpoint!r} does "
                    f"not have (it has {', '.join(sorted(present)) or 'none'}): that part of the policy does "
                    "nothing. Fix the policy and run `shadowscale policy apply`.",
                    file=sys.stderr,
                )

    def status(self) -> int:
        from shadowscale.shared.endpoint_state import read_memory

        outputs, _, repository = self._wiring_and_repository()
        stored = repository.get(self._args.endpoint)
        described = self.describe_endpoint(self._args.endpoint)
        memory, lease_owner = read_memory(self.client("dynamodb"), outputs.EndpointStateTableName, self._args.endpoint)
        now = datetime.now(UTC)
        variants = [
            _variant_status(variant, stored[0].variant(variant["VariantName"]) if stored else None, memory, now)
            for variant in described.get("ProductionVariants", [])
        ]
        document = {
            "endpoint": self._args.endpoint,
            "status": described["EndpointStatus"],
            "config": described["EndpointConfigName"],
            "lease": lease_owner,
            "policyRevision": stored[1] if stored else None,
            "variants": variants,
        }
        lines = [
            f"endpoint {self._args.endpoint}: {described['EndpointStatus']} (config {described['EndpointConfigName']})",
            f"lease: {lease_owner or 'free'}",
            *(_variant_line(variant) for variant in variants),
            f"policy revision: {stored[1] if stored else 'none stored'}",
        ]
        emit(self._args, document, lines)
        if stored is not None:
            self._warn_missing_variants(stored[0], described)
        return 0

    def delete(self) -> int:
        _, wiring, repository = self._wiring_and_repository()
        removed = repository.delete(self._args.endpoint)
        plan = wiring.remove(self._args.endpoint)
        print(
            f"deleted policy for {self._args.endpoint!r}"
            if removed
            else f"no policy stored for {self._args.endpoint!r}"
        )
        print("\n".join(plan.lines()))
        return 0


def _variant_status(
    variant: dict[str, Any],
    policy: VariantPolicy | None,
    memory: Any,  # noqa: ANN401  (EndpointMemory, imported lazily)
    now: datetime,
) -> dict[str, Any]:
    from shadowscale.capacity.decisions import schedule_state

    name = variant["VariantName"]
    remembered = memory.variant(name)
    status: dict[str, Any] = {
        "name": name,
        "instances": variant.get("CurrentInstanceCount"),
        "weight": variant.get("CurrentWeight"),
        "alarms": {alarm: seen.state for alarm, seen in remembered.alarms.items()},
        "lastScaledAt": remembered.last_activity_at.isoformat() if remembered.last_activity_at else None,
        "policy": None,
    }
    if policy is not None:
        state = schedule_state(policy, now)
        status["policy"] = {
            "minInstances": policy.min_instances,
            "maxInstances": policy.max_instances,
            "floor": state.floor,
            "activeWindows": [item.window.name for item in state.active],
        }
    return status


def _variant_line(status: dict[str, Any]) -> str:
    line = f"  {status['name']}: {status['instances']} instance(s), weight {status['weight']}"
    policy = status["policy"]
    if policy is not None:
        floor = f"floor {policy['floor']}" if policy["floor"] is not None else "no window floor"
        windows = ", ".join(policy["activeWindows"]) or "none active"
        line += f"; policy [{policy['minInstances']}..{policy['maxInstances']}], {floor} now, windows: {windows}"
    else:
        line += "; not in the policy"
    if status["alarms"]:
        line += "; alarms " + ", ".join(f"{alarm}={state}" for alarm, state in status["alarms"].items())
    if status["lastScaledAt"]:
        line += f"; last scaled {status['lastScaledAt']}"
    return line
