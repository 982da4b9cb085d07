"""The shadowscale command line: `shadowscale policy apply|validate|show|status|delete` and
`shadowscale shadow start|follow|approve|reject|abort|recover|status|report` and `shadowscale diffs show|backfill`.

Exit codes: 0 done, 2 invalid input (nothing was changed), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shadowscale.capacity.policy import CapacityPolicy, parse_policy
from shadowscale.shared.errors import InvalidPolicy, InvalidShadowTestInput, ShadowscaleError


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


def _session(args: argparse.Namespace) -> Any:  # noqa: ANN401  (boto3 sessions are untyped)
    import boto3

    return boto3.Session(region_name=args.region) if args.region else boto3.Session()


def _client(args: argparse.Namespace, service: str) -> Any:  # noqa: ANN401
    from shadowscale.shared.clients import SDK_CONFIG

    return _session(args).client(service, config=SDK_CONFIG, endpoint_url=args.endpoint_url)


def _wiring_and_repository(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from shadowscale.capacity.policy_store import PolicyRepository
    from shadowscale.cli.policy_wiring import PolicyWiring, StackOutputs

    outputs = StackOutputs.from_stack(_client(args, "cloudformation"), args.stack_name)
    wiring = PolicyWiring(outputs, _client(args, "scheduler"), _client(args, "events"))
    return outputs, wiring, PolicyRepository(_client(args, "dynamodb"), outputs.PolicyTableName)


def _check_endpoint(args: argparse.Namespace, policy: CapacityPolicy) -> list[str]:
    """Refuse a policy naming variants the endpoint does not have; warn about alarms that do not exist."""
    sagemaker = _client(args, "sagemaker")
    warnings: list[str] = []
    try:
        described = sagemaker.describe_endpoint(EndpointName=policy.endpoint)
    except ClientError as exc:
        if args.allow_missing_endpoint:
            return [f"endpoint {policy.endpoint!r} does not exist yet"]
        raise InvalidPolicy(
            f"endpoint {policy.endpoint!r}: {exc.response['Error']['Message']} (use --allow-missing-endpoint)"
        ) from exc
    present = {variant["VariantName"] for variant in described.get("ProductionVariants", [])}
    for index, variant in enumerate(policy.variants):
        if variant.name not in present:
            raise InvalidPolicy(
                f"variants.{index}.name: endpoint {policy.endpoint!r} has no variant {variant.name!r} "
                f"(it has {', '.join(sorted(present))})"
            )
    if policy.alarm_names:
        cloudwatch = _client(args, "cloudwatch")
        found = {
            alarm["AlarmName"]
            for alarm in cloudwatch.describe_alarms(AlarmNames=list(policy.alarm_names)).get("MetricAlarms", [])
        }
        warnings += [f"alarm {name!r} does not exist yet" for name in policy.alarm_names if name not in found]
    return warnings


def cmd_validate(args: argparse.Namespace) -> int:
    policy = load_policy_file(Path(args.file))
    print(f"{args.file}: valid policy for endpoint {policy.endpoint!r} ({len(policy.variants)} variant(s))")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    policy = load_policy_file(Path(args.file))
    warnings = _check_endpoint(args, policy)
    _, wiring, repository = _wiring_and_repository(args)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.dry_run:
        plan = wiring.plan(policy, policy.endpoint)
        print(f"would store policy for {policy.endpoint!r}")
        print("\n".join(plan.lines()))
        return 0
    revision = repository.put(policy)
    plan = wiring.apply(policy)
    print(f"stored policy for {policy.endpoint!r} as revision {revision}")
    print("\n".join(plan.lines()))
    return 0


def _warn_missing_variants(policy: CapacityPolicy, described: dict[str, Any]) -> None:
    """Loud, on stderr: a policy variant the endpoint does not have is never scaled."""
    present = {variant["VariantName"] for variant in described.get("ProductionVariants", [])}
    for variant in policy.variants:
        if variant.name not in present:
            print(
                f"WARNING: the policy names variant {variant.name!r}, which endpoint {policy.endpoint!r} does not "
                f"have (it has {', '.join(sorted(present)) or 'none'}): that part of the policy does nothing. "
                "Fix the policy and run `shadowscale policy apply`.",
                file=sys.stderr,
            )


def _describe_endpoint(args: argparse.Namespace, endpoint: str) -> dict[str, Any] | None:
    try:
        described: dict[str, Any] = _client(args, "sagemaker").describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        print(f"WARNING: endpoint {endpoint!r}: {exc.response['Error']['Message']}", file=sys.stderr)
        return None
    return described


def cmd_show(args: argparse.Namespace) -> int:
    _, _, repository = _wiring_and_repository(args)
    stored = repository.describe(args.endpoint)
    if stored is None:
        print(f"no policy stored for {args.endpoint!r}", file=sys.stderr)
        return 1
    print(f"# revision {stored.revision}, applied {stored.applied_at or 'at an unknown time'}", end="")
    print(f" by {stored.applied_by}" if stored.applied_by else "")
    if stored.reason:
        print(f"# reason: {stored.reason}")
    described = _describe_endpoint(args, args.endpoint)
    if described is not None:
        _warn_missing_variants(stored.policy, described)
    print(json.dumps(stored.policy.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from shadowscale.capacity.decisions import schedule_state
    from shadowscale.shared.endpoint_state import read_memory

    outputs, _, repository = _wiring_and_repository(args)
    stored = repository.get(args.endpoint)
    described = _client(args, "sagemaker").describe_endpoint(EndpointName=args.endpoint)
    memory, lease_owner = read_memory(_client(args, "dynamodb"), outputs.EndpointStateTableName, args.endpoint)
    now = datetime.now(UTC)
    print(f"endpoint {args.endpoint}: {described['EndpointStatus']} (config {described['EndpointConfigName']})")
    print(f"lease: {lease_owner or 'free'}")
    for variant in described.get("ProductionVariants", []):
        name = variant["VariantName"]
        line = f"  {name}: {variant.get('CurrentInstanceCount')} instance(s), weight {variant.get('CurrentWeight')}"
        if stored is not None and (policy_variant := stored[0].variant(name)) is not None:
            state = schedule_state(policy_variant, now)
            line += (
                f"; policy [{policy_variant.min_instances}..{policy_variant.max_instances}]"
                f", floor now {state.floor}, windows [{state.occurrence or 'none'}]"
            )
        remembered = memory.variant(name)
        alarms = ", ".join(f"{alarm}={seen.state}" for alarm, seen in remembered.alarms.items())
        if alarms:
            line += f"; alarms {alarms}"
        if remembered.last_activity_at:
            line += f"; last scaled {remembered.last_activity_at.isoformat()}"
        print(line)
    print(f"policy revision: {stored[1] if stored else 'none'}")
    if stored is not None:
        _warn_missing_variants(stored[0], described)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _, wiring, repository = _wiring_and_repository(args)
    removed = repository.delete(args.endpoint)
    plan = wiring.remove(args.endpoint)
    print(f"deleted policy for {args.endpoint!r}" if removed else f"no policy stored for {args.endpoint!r}")
    print("\n".join(plan.lines()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shadowscale", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    policy = commands.add_parser("policy", help="capacity policies").add_subparsers(dest="action", required=True)

    def aws_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--stack-name", default="shadowscale-dev", help="deployed stack (default: shadowscale-dev)")
        sub.add_argument("--region", default=None)
        sub.add_argument("--endpoint-url", default=None, help="e.g. http://localhost:5000 for the local cloud")

    validate = policy.add_parser("validate", help="check a policy file offline")
    validate.add_argument("file")
    validate.set_defaults(run=cmd_validate)

    apply = policy.add_parser("apply", help="store a policy and create/remove the schedules and alarm rule it implies")
    apply.add_argument("file")
    apply.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    apply.add_argument("--allow-missing-endpoint", action="store_true")
    aws_options(apply)
    apply.set_defaults(run=cmd_apply)

    for name, run, text in (
        ("show", cmd_show, "print the stored policy"),
        ("status", cmd_status, "the endpoint now: counts, weights, windows, alarm states, lease"),
        ("delete", cmd_delete, "delete a policy and everything it implies"),
    ):
        sub = policy.add_parser(name, help=text)
        sub.add_argument("endpoint")
        aws_options(sub)
        sub.set_defaults(run=run)

    from shadowscale.cli.shadow import add_shadow_commands

    add_shadow_commands(commands, aws_options, _client)
    from shadowscale.cli.diffs import add_diff_commands

    add_diff_commands(commands, aws_options, _client)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (InvalidPolicy, InvalidShadowTestInput) as exc:
        print(f"error: {exc}\nnothing was applied", file=sys.stderr)
        return 2
    except (ShadowscaleError, BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
