"""Hourly prices of SageMaker real-time inference instances, for a shadow test's cost budget.

EXAMPLE PRICES, TO EDIT. They are on-demand prices for real-time inference in us-east-1 as we remember
them; they were not checked against the AWS price list (this was written offline), they change, and other
regions differ. For a cost budget you can rely on, look up your region's prices on
https://aws.amazon.com/sagemaker/pricing/ (or the Price List API, service code AmazonSageMaker) and either
edit this table or give `budget.hourlyPrices` in the test's input, which always wins. A cost budget for an
instance type in neither is refused when the input is validated, before anything is touched.
"""

from __future__ import annotations

from typing import Final

EXAMPLE_PRICES_REGION: Final = "us-east-1"
# When the table was written, not when the prices were verified (they were not: see above).
EXAMPLE_PRICES_WRITTEN: Final = "2026-12-03"

EXAMPLE_HOURLY_PRICES_USD: Final[dict[str, float]] = {
    "ml.t2.medium": 0.056,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.c5.large": 0.102,
    "ml.c5.xlarge": 0.204,
    "ml.g4dn.xlarge": 0.7364,
    "ml.g5.xlarge": 1.408,
}
