"""shadowscale: day-2 operations for Amazon SageMaker real-time endpoints."""

__version__ = "0.1.0"
