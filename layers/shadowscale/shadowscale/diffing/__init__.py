"""The response-diff engine: parse SageMaker data capture, pair production and shadow halves, compare,
aggregate per time window. Pure: no boto3, no clock, no environment; adapters feed it bytes.

Import the modules you need (`shadowscale.diffing.engine`, ...): this package imports nothing on purpose,
so that the models can use the histogram without pulling in the engine.
"""
