"""`make local-up`: the local cloud as a server on 127.0.0.1, so real clients work unchanged.

The stack is deployed and a simulated production endpoint serves traffic, exactly as in the embedded
mode; a moto server on the same process serves the same backends over HTTP, so the AWS CLI, boto3
(`--endpoint-url` / `AWS_ENDPOINT_URL`) and `shadowscale --endpoint-url` all see one cloud. The clock
runs `--speed` times faster than wall time; state-machine Wait states pass at once.

    python -m shadowscale_localcloud.server --port 5000 --speed 60
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shadowscale_localcloud.demo import PROCESS_ENVIRONMENT, repo_root

if TYPE_CHECKING:
    from shadowscale_localcloud.platform import LocalCloud

ENDPOINT = "fraud-detector"
CANDIDATE_MODEL = "fraud-detector-v2"


def seed_endpoint(cloud: LocalCloud) -> None:
    """A one-variant production endpoint with a candidate model registered, ready for a shadow test."""
    from shadowscale_localcloud.resources import create_endpoint_once_visible, create_models

    sagemaker = cloud.client("sagemaker")
    create_models(sagemaker, f"{ENDPOINT}-v1", CANDIDATE_MODEL)
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{ENDPOINT}-config-1",
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": f"{ENDPOINT}-v1",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.m5.xlarge",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    create_endpoint_once_visible(sagemaker, ENDPOINT, f"{ENDPOINT}-config-1", cloud.advance)
    cloud.client("cloudwatch").put_metric_alarm(
        AlarmName=f"{ENDPOINT}-latency-high",
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "primary"}],
        ExtendedStatistic="p90",
        Period=60,
        EvaluationPeriods=3,
        Threshold=100_000.0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )
    from shadowscale_localcloud.simulated_endpoint import TrafficPattern

    cloud.simulate(ENDPOINT, TrafficPattern.flat(20))  # traffic, metrics and data capture


def serve(port: int, speed: float, root: Path, ready: threading.Event | None = None) -> None:
    os.environ.update({key: value for key, value in PROCESS_ENVIRONMENT.items() if key not in os.environ})
    from moto.server import ThreadedMotoServer

    from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud

    stopping = threading.Event()
    clock = AcceleratedClock(datetime.now(UTC).replace(second=0, microsecond=0))
    with LocalCloud(root=root, clock=clock, stack_name="shadowscale-local", endpoint_update_seconds=30) as cloud:
        seed_endpoint(cloud)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        print(f"local cloud up on http://localhost:{port} (stack shadowscale-local, stage dev)", flush=True)
        for key, value in sorted(cloud.outputs.items()):
            print(f"  {key} = {value}", flush=True)
        print(f"  endpoint {ENDPOINT} (variant primary), candidate model {CANDIDATE_MODEL}", flush=True)
        print(f"export AWS_ENDPOINT_URL=http://localhost:{port} AWS_DEFAULT_REGION=us-east-1", flush=True)
        print("ready", flush=True)
        if ready is not None:
            ready.set()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        try:
            last = time.monotonic()
            while not stopping.wait(1.0):
                now = time.monotonic()
                cloud.advance((now - last) * speed)
                last = now
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shadowscale_localcloud.server", description=__doc__)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per wall-clock second")
    args = parser.parse_args(argv)
    serve(args.port, args.speed, repo_root())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
