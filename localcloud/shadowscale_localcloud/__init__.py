"""The local cloud: moto plus what moto lacks for SageMaker endpoints. Test and demo tooling only:
it needs moto, and the layer build leaves this package out of the Lambda artifact."""
