"""The instance catalogue: vCPUs, memory and on-demand price per EC2 instance type.

Specs come from EC2 ``DescribeInstanceTypes`` (paginated) and prices from the AWS Pricing API
(``pricing.get_products``, Linux, shared tenancy, on-demand, USD/hour) when AWS is reachable;
otherwise, or when a call fails, both come from the bundled table
``connectors/sinks/aws/data/ec2_on_demand_prices.csv`` (us-east-1 list prices, see its header for the
source and date). :class:`InstanceCatalogue` says which source each part came from, so reports
never present table prices as live ones.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from connectors.sinks.aws.clients import AwsClient, aws_client

log = logging.getLogger(__name__)

INSTANCE_COLUMNS: tuple[str, ...] = (
    "instance_type",
    "family",
    "vcpu",
    "memory_gib",
    "usd_per_hour",
    "burstable",
)
BUNDLED_TABLE = "ec2_on_demand_prices.csv"
BUNDLED_REGION = "us-east-1"
BUNDLED_PRICE_SOURCE = "bundled-table:us-east-1 list prices (2024)"
PRICING_API_SOURCE = "pricing-api"
EC2_SPEC_SOURCE = "ec2:describe_instance_types"
BUNDLED_SPEC_SOURCE = "bundled-table"
# The Price List Query API is served from a few regions only; us-east-1 is one of them.
PRICING_API_REGION = "us-east-1"


@dataclass(frozen=True)
class InstanceCatalogue:
    """Instance types (``INSTANCE_COLUMNS``) and where their specs and prices came from."""

    table: pd.DataFrame
    spec_source: str
    price_source: str

    def get(self, instance_type: str) -> pd.Series | None:
        """The row of one type, or None when the catalogue does not know it."""
        rows = self.table[self.table["instance_type"] == instance_type]
        return None if rows.empty else rows.iloc[0]


class PricingUnavailableError(RuntimeError):
    """The Pricing API could not be asked or returned no usable on-demand price."""


def family_of(instance_type: str) -> str:
    """``m6i.xlarge`` -> ``m6i``."""
    family, dot, size = instance_type.partition(".")
    if not dot or not family or not size:
        raise ValueError(f"not an EC2 instance type name: {instance_type!r} (expected family.size)")
    return family


def bundled_table() -> pd.DataFrame:
    """The bundled specs-and-prices table (``INSTANCE_COLUMNS``)."""
    with resources.files("connectors.sinks.aws.data").joinpath(BUNDLED_TABLE).open("r") as fh:
        raw = pd.read_csv(fh, comment="#", dtype={"instance_type": "string"})
    table = raw.assign(
        family=raw["instance_type"].map(family_of),
        vcpu=raw["vcpu"].astype("float64"),
        memory_gib=raw["memory_gib"].astype("float64"),
        usd_per_hour=raw["usd_per_hour"].astype("float64"),
        burstable=raw["burstable"].astype(str).str.lower().eq("true"),
    )
    return table[list(INSTANCE_COLUMNS)].reset_index(drop=True)


def describe_instance_types(ec2: AwsClient, families: Iterable[str]) -> pd.DataFrame:
    """Specs of every instance type in ``families`` from EC2 (all pages), ``usd_per_hour`` NaN."""
    patterns = sorted({f"{family}.*" for family in families})
    if not patterns:
        raise ValueError("describe_instance_types needs at least one instance family")
    rows = []
    pages = ec2.get_paginator("describe_instance_types").paginate(
        Filters=[{"Name": "instance-type", "Values": patterns}]
    )
    for page in pages:
        for item in page.get("InstanceTypes", []):
            rows.append(
                {
                    "instance_type": item["InstanceType"],
                    "family": family_of(item["InstanceType"]),
                    "vcpu": float(item["VCpuInfo"]["DefaultVCpus"]),
                    "memory_gib": float(item["MemoryInfo"]["SizeInMiB"]) / 1024.0,
                    "usd_per_hour": float("nan"),
                    "burstable": bool(item.get("BurstablePerformanceSupported", False)),
                }
            )
    frame = pd.DataFrame(rows, columns=list(INSTANCE_COLUMNS))
    return frame.drop_duplicates("instance_type").sort_values("instance_type").reset_index(drop=True)


def on_demand_price(price_list: Sequence[str]) -> float:
    """The hourly USD on-demand price in a ``get_products`` PriceList (JSON strings).

    Several products can match one filter set (e.g. capacity reservations); the plain
    ``RunInstances`` product's lowest positive hourly rate is the list price.
    """
    prices: list[float] = []
    for entry in price_list:
        product = json.loads(entry)
        operation = product.get("product", {}).get("attributes", {}).get("operation", "RunInstances")
        if operation != "RunInstances":
            continue
        for offer in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in offer.get("priceDimensions", {}).values():
                usd = float(dimension.get("pricePerUnit", {}).get("USD", "nan"))
                if dimension.get("unit") == "Hrs" and usd > 0:
                    prices.append(usd)
    if not prices:
        raise PricingUnavailableError("no positive hourly on-demand USD price in the price list")
    return min(prices)


def pricing_filters(instance_type: str, region: str) -> list[dict[str, str]]:
    """``get_products`` filters for one type's Linux, shared-tenancy, on-demand list price."""
    fields = {
        "instanceType": instance_type,
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "licenseModel": "No License required",
        "capacitystatus": "Used",
    }
    return [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in fields.items()]


def prices_from_api(pricing: AwsClient, instance_types: Iterable[str], region: str) -> dict[str, float]:
    """Hourly on-demand prices per type from the Pricing API; raises on any failure."""
    out: dict[str, float] = {}
    for instance_type in sorted(set(instance_types)):
        price_list: list[str] = []
        pages = pricing.get_paginator("get_products").paginate(
            ServiceCode="AmazonEC2", Filters=pricing_filters(instance_type, region), FormatVersion="aws_v1"
        )
        for page in pages:
            price_list.extend(page.get("PriceList", []))
        try:
            out[instance_type] = on_demand_price(price_list)
        except PricingUnavailableError as exc:
            raise PricingUnavailableError(f"{instance_type} in {region}: {exc}") from None
    return out


def load_instance_catalogue(
    families: Iterable[str],
    *,
    extra_types: Iterable[str] = (),
    region: str = BUNDLED_REGION,
    use_aws: bool = False,
    use_pricing_api: bool | None = None,
    endpoint_url: str | None = None,
    ec2: AwsClient | None = None,
    pricing: AwsClient | None = None,
) -> InstanceCatalogue:
    """The catalogue for ``families`` plus ``extra_types`` (e.g. the types services run today).

    With ``use_aws`` (or explicit clients), specs come from EC2 and prices from the Pricing API
    (unless ``use_pricing_api`` is False); a failure of either falls back to the bundled table
    for that part and is logged. Without it, everything comes from the bundled table.
    """
    ask_pricing = use_aws if use_pricing_api is None else (use_aws and use_pricing_api)
    families = sorted(set(families) | {family_of(t) for t in extra_types})
    bundled = bundled_table()
    wanted = bundled[bundled["family"].isin(families)]
    specs, spec_source = wanted.drop(columns="usd_per_hour"), BUNDLED_SPEC_SOURCE
    if use_aws or ec2 is not None:
        try:
            client = ec2 or aws_client("ec2", region=region, endpoint_url=endpoint_url)
            described = describe_instance_types(client, families)
            if described.empty:
                raise LookupError(f"EC2 knows no instance type in families {families}")
            specs, spec_source = described.drop(columns="usd_per_hour"), EC2_SPEC_SOURCE
        except Exception as exc:  # noqa: BLE001 - any AWS failure means: use the bundled specs
            log.warning("describe_instance_types failed (%s); using the bundled instance table", exc)
    prices, price_source = _table_prices(bundled, region)
    if ask_pricing or pricing is not None:
        try:
            client = pricing or aws_client(
                "pricing", region=PRICING_API_REGION, endpoint_url=endpoint_url, max_attempts=2
            )
            prices, price_source = prices_from_api(client, specs["instance_type"], region), PRICING_API_SOURCE
        except Exception as exc:  # noqa: BLE001 - any Pricing failure means: use the bundled prices
            log.warning(
                "AWS Pricing API unavailable (%s); using the bundled price table (%s)", exc, price_source
            )
    table = specs.assign(usd_per_hour=specs["instance_type"].map(prices).astype("float64"))
    table = table[list(INSTANCE_COLUMNS)].sort_values("instance_type").reset_index(drop=True)
    return InstanceCatalogue(table=table, spec_source=spec_source, price_source=price_source)


def _table_prices(bundled: pd.DataFrame, region: str) -> tuple[dict[str, float], str]:
    source = (
        BUNDLED_PRICE_SOURCE if region == BUNDLED_REGION else f"{BUNDLED_PRICE_SOURCE}, used for {region}"
    )
    return dict(zip(bundled["instance_type"], bundled["usd_per_hour"], strict=True)), source
