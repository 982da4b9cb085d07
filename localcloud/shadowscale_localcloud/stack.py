"""Deploy the real template.yaml into moto: SAM-transform it, upload the code, create the stack, then
create what moto's CloudFormation silently skips (alarms, schedule groups, queue policies) from the
same template, so the local stack is the deployed stack and nothing is described twice.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shadowscale_localcloud.resources import ACCOUNT, REGION

ARTIFACT_BUCKET = "shadowscale-local-artifacts"
# moto's CloudFormation (5.2.5) reports these CREATE_COMPLETE without creating anything.
SKIPPED_BY_MOTO = (
    "AWS::CloudWatch::Alarm",
    "AWS::Scheduler::ScheduleGroup",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
)
# The parameters the template leaves to the deployer, as the local cloud sets them. The suites create
# endpoints of any name, so the local stack may scale and shadow-test every endpoint: a value the template's
# AllowedPattern refuses in AWS (moto's CloudFormation does not check AllowedPattern). The IAM enforcement
# tests deploy with a narrow pattern instead. Model roles are the one the local resources create.
LOCAL_PARAMETERS = {"EndpointNamePattern": "*", "ModelExecutionRolePattern": "sagemaker-execution"}


def load_template(root: Path) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    loaded: dict[str, Any] = json.loads(json.dumps(cfn_yaml.load(str(root / "template.yaml")), default=str))
    return loaded


class _ManagedPolicies:
    """samtranslator asks IAM for AWS managed policy ARNs; these are the ones SAM adds to functions."""

    def load(self) -> dict[str, str]:
        return {
            "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
            "AWSLambdaSQSQueueExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
        }


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(directory))
    return buffer.getvalue()


@dataclass
class DeployedStack:
    name: str
    template: dict[str, Any]  # the SAM template as written (before transform)
    parameters: dict[str, str]
    physical: dict[str, str]  # logical id → physical id
    outputs: dict[str, str]
    code_dirs: dict[str, Path] = field(default_factory=dict)  # function name → its CodeUri folder
    log_groups: dict[str, str] = field(default_factory=dict)  # function name → its LoggingConfig log group
    definitions: dict[str, str] = field(default_factory=dict)  # state machine ARN → its substituted definition
    translated: dict[str, Any] = field(default_factory=dict)  # the template after the SAM transform, as deployed

    def function_name(self, logical_id: str) -> str:
        return self.physical[logical_id]


def deploy_stack(
    session: Any,  # noqa: ANN401
    root: Path,
    *,
    stack_name: str,
    stage: str = "dev",
    parameters: Mapping[str, str] | None = None,
) -> DeployedStack:
    from samtranslator.translator.transform import transform

    template = load_template(root)
    sources: dict[str, Path] = {}
    rewritten = json.loads(json.dumps(template))
    for logical_id, resource in rewritten["Resources"].items():
        properties = resource.setdefault("Properties", {})
        key = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}.get(
            resource["Type"]
        )
        if key:
            sources[logical_id] = root / properties[key]
            properties[key] = f"s3://{ARTIFACT_BUCKET}/{logical_id}.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            # What `sam package` uploads, inlined: the definition file is the one the template names.
            properties["Definition"] = json.loads((root / properties.pop("DefinitionUri")).read_text())

    s3 = session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    for logical_id, source in sources.items():
        s3.put_object(Bucket=ARTIFACT_BUCKET, Key=f"{logical_id}.zip", Body=_zip_directory(source))

    parameters = {**LOCAL_PARAMETERS, **(parameters or {}), "Stage": stage}
    translated = transform(rewritten, parameters, _ManagedPolicies())
    cloudformation = session.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(translated),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    described = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if described["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"local stack {stack_name}: {described['StackStatus']} {described.get('StackStatusReason')}")
    physical = {
        summary["LogicalResourceId"]: summary.get("PhysicalResourceId", "")
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
        for summary in page["StackResourceSummaries"]
    }
    stack = DeployedStack(
        name=stack_name,
        template=template,
        parameters={**_parameter_defaults(template), **parameters},
        physical=physical,
        outputs={output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])},
        translated=translated,
    )
    resolver = Resolver(stack)
    _key_policies_as_documents()
    _create_what_moto_skipped(session, stack, resolver)
    _attach_managed_policies(translated, stack, resolver)
    _register_executable_state_machines(session, stack, resolver, root)
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        function_name = physical[logical_id]
        stack.code_dirs[function_name] = sources[logical_id]
        logging_config = resource["Properties"].get("LoggingConfig", {})
        if "LogGroup" in logging_config:
            stack.log_groups[function_name] = str(resolver.resolve(logging_config["LogGroup"]))
    # Outputs that named a skipped resource were dropped by moto: resolve them from the template.
    for key, output in template.get("Outputs", {}).items():
        if key not in stack.outputs:
            stack.outputs[key] = str(resolver.resolve(output["Value"]))
            _publish_output(stack_name, key, stack.outputs[key])
    return stack


def _publish_output(stack_name: str, key: str, value: str) -> None:
    """Make DescribeStacks show an output moto dropped, so the CLI reads the stack as it would in AWS."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.cloudformation.parsing import Output

    for moto_stack in cloudformation_backends[ACCOUNT][REGION].stacks.values():
        if moto_stack.name == stack_name:
            moto_stack.output_map._parsed_outputs[key] = Output(key, value, "")


def _parameter_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}


def _register_executable_state_machines(
    session: Any,  # noqa: ANN401
    stack: DeployedStack,
    resolver: Resolver,
    root: Path,
) -> None:
    """moto's CloudFormation puts state machines where its ASL interpreter does not look, and ignores
    DefinitionSubstitutions: create each one again through the API, with its substitutions applied."""
    stepfunctions = session.client("stepfunctions", region_name=REGION)
    for logical_id, resource in stack.template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::StateMachine":
            continue
        properties = resource["Properties"]
        definition = (root / properties["DefinitionUri"]).read_text()
        for name, value in resolver.resolve(properties.get("DefinitionSubstitutions", {})).items():
            definition = definition.replace(f"${{{name}}}", str(value))
        name = str(resolver.resolve(properties["Name"]))
        role = stack.physical.get(f"{logical_id}Role", f"{logical_id}Role")
        created = stepfunctions.create_state_machine(
            name=name,
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
            type=properties.get("Type", "STANDARD"),
            tracingConfiguration={"enabled": bool(properties.get("Tracing", {}).get("Enabled", False))},
        )
        stack.physical[logical_id] = created["stateMachineArn"]
        stack.definitions[created["stateMachineArn"]] = definition


def _key_policies_as_documents() -> None:
    """moto's CloudFormation keeps a key's KeyPolicy as the object the template gave; KMS holds a policy
    as a JSON document (GetKeyPolicy returns a string, and moto's own DescribeKey then fails on it)."""
    from moto.kms.models import kms_backends

    for key in kms_backends[ACCOUNT][REGION].keys.values():
        if not isinstance(key.policy, str):
            key.policy = json.dumps(key.policy)


def _create_what_moto_skipped(session: Any, stack: DeployedStack, resolver: Resolver) -> None:  # noqa: ANN401
    for logical_id, resource in stack.template["Resources"].items():
        kind = resource["Type"]
        if kind not in SKIPPED_BY_MOTO:
            continue
        properties = resolver.resolve(resource.get("Properties", {}))
        if kind == "AWS::Scheduler::ScheduleGroup":
            session.client("scheduler", region_name=REGION).create_schedule_group(Name=properties["Name"])
            stack.physical[logical_id] = properties["Name"]
        elif kind == "AWS::CloudWatch::Alarm":
            session.client("cloudwatch", region_name=REGION).put_metric_alarm(**properties)
            stack.physical[logical_id] = properties["AlarmName"]
        elif kind == "AWS::SNS::TopicPolicy":
            sns = session.client("sns", region_name=REGION)
            for topic_arn in properties["Topics"]:
                sns.set_topic_attributes(
                    TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps(properties["PolicyDocument"])
                )
        elif kind == "AWS::SQS::QueuePolicy":
            sqs = session.client("sqs", region_name=REGION)
            for queue_url in properties["Queues"]:
                sqs.set_queue_attributes(
                    QueueUrl=queue_url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])}
                )


def _attach_managed_policies(translated: Mapping[str, Any], stack: DeployedStack, resolver: Resolver) -> None:
    """moto's CloudFormation creates roles without their ManagedPolicyArns (SAM's AWS managed policies and
    the template's own AWS::IAM::ManagedPolicy resources): attach them, so the roles hold what AWS gives
    them. AWS managed policies come from moto's copy of their documents, loaded one by one."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, iam_backends

    iam = iam_backends[ACCOUNT]["aws"]
    aws_managed: dict[str, Any] | None = None
    for logical_id, resource in translated["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        role_name = stack.physical.get(logical_id)
        for arn in (str(resolver.resolve(entry)) for entry in resource["Properties"].get("ManagedPolicyArns", [])):
            if arn not in iam.managed_policies and arn.startswith("arn:aws:iam::aws:policy/"):
                aws_managed = aws_managed if aws_managed is not None else json.loads(aws_managed_policies_data)
                name = arn.rsplit("/", 1)[-1]
                iam.managed_policies[arn] = AWSManagedPolicy.from_data(name, ACCOUNT, REGION, aws_managed[name])
            if role_name:
                iam.attach_role_policy(arn, role_name)


def apply_bucket_notifications(session: Any, stack: DeployedStack) -> None:  # noqa: ANN401
    """moto's CloudFormation creates buckets without their NotificationConfiguration: apply it through the
    API (CloudFormation's shape → PutBucketNotificationConfiguration's). Call it once the queues' consumers
    are in place: S3 sends a test event as the configuration is saved."""
    resolver = Resolver(stack)
    s3 = session.client("s3", region_name=REGION)
    for logical_id, resource in stack.template["Resources"].items():
        if resource["Type"] != "AWS::S3::Bucket":
            continue
        notifications = resolver.resolve(resource.get("Properties", {}).get("NotificationConfiguration"))
        if not notifications:
            continue
        queues = [
            {
                "QueueArn": entry["Queue"],
                "Events": [entry["Event"]],
                **(
                    {"Filter": {"Key": {"FilterRules": entry["Filter"]["S3Key"]["Rules"]}}} if "Filter" in entry else {}
                ),
            }
            for entry in notifications.get("QueueConfigurations", [])
        ]
        s3.put_bucket_notification_configuration(
            Bucket=stack.physical[logical_id], NotificationConfiguration={"QueueConfigurations": queues}
        )


class Resolver:
    """Enough of CloudFormation's intrinsic functions for the resources moto skips."""

    def __init__(self, stack: DeployedStack) -> None:
        self._stack = stack

    def resolve(self, value: Any) -> Any:  # noqa: ANN401
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self._ref(value["Ref"])
        if set(value) == {"Fn::Sub"}:
            return self._sub(value["Fn::Sub"])
        if set(value) == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            logical_id, attribute = target if isinstance(target, list) else target.split(".", 1)
            return self._get_att(logical_id, attribute)
        if set(value) == {"Fn::FindInMap"}:
            name, first, second = (self.resolve(part) for part in value["Fn::FindInMap"])
            return self._stack.template["Mappings"][name][first][second]
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": self._stack.name,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self._stack.parameters:
            return self._stack.parameters[name]
        if name in self._stack.physical:
            return self._stack.physical[name]
        resource = self._stack.template["Resources"][name]
        # A resource moto skipped and we have not created yet: its name property is its Ref.
        return str(self.resolve(resource["Properties"].get("Name", name)))

    def _sub(self, spec: str | list[Any]) -> str:
        text, variables = (spec, {}) if isinstance(spec, str) else (spec[0], self.resolve(spec[1]))

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in variables:
                return str(variables[token])
            if "." in token:
                logical_id, attribute = token.split(".", 1)
                return str(self._get_att(logical_id, attribute))
            return self._ref(token)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def _get_att(self, logical_id: str, attribute: str) -> str:
        physical = self._ref(logical_id)
        kind = self._stack.template["Resources"][logical_id]["Type"]
        if kind == "AWS::SQS::Queue":
            name = physical.rsplit("/", 1)[-1]
            return {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", "QueueName": name}[attribute]
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function") and attribute == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}"
        if kind in ("AWS::S3::Bucket",) and attribute == "Arn":
            return f"arn:aws:s3:::{physical}"
        if kind == "AWS::KMS::Key" and attribute == "Arn":
            return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{physical}"
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:aws:iam::{ACCOUNT}:role/{physical}"
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}"
        raise KeyError(f"local cloud cannot resolve Fn::GetAtt {logical_id}.{attribute}")
