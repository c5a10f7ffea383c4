"""Prices per token and the cost of logged usage.

mindshift logs raw token counts with every call (`harness.types.Usage`) and prices them only
when asked, from a versioned table: the one shipped in the package (`harness/prices.toml`),
or the user's own (`--prices FILE`, or the environment variable MINDSHIFT_PRICES). Prices
change more often than code, so a corrected table re-prices any finished run.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mindshift.harness.config import describe_validation_error
from mindshift.harness.errors import ConfigError
from mindshift.harness.record import CallRecord
from mindshift.harness.types import Usage

PRICES_ENV = "MINDSHIFT_PRICES"
SHIPPED_TABLE = "prices.toml"
PER = 1_000_000
"""Prices are per million tokens."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelPrice(_Strict):
    """What one model's tokens cost, per million."""

    input: float = Field(ge=0.0)
    """Every prompt token (cached ones at `cached_input` instead, when given)."""
    cached_input: float | None = Field(default=None, ge=0.0)
    """Prompt tokens served from the provider's prompt cache (default: `input`)."""
    output: float = Field(ge=0.0)
    """Every output token, reasoning tokens included."""
    batch_discount: float | None = Field(default=None, gt=0.0, le=1.0)
    """Multiplier for calls made through a batch API (default: the table's)."""


class PriceDefaults(_Strict):
    batch_discount: float = Field(default=0.5, gt=0.0, le=1.0)


class PriceTable(_Strict):
    """A whole price table file."""

    version: str
    """Names the table in every cost report (a date is a good version)."""
    currency: str = "USD"
    defaults: PriceDefaults = Field(default_factory=PriceDefaults)
    models: dict[str, ModelPrice] = Field(default_factory=dict)
    """By model spec or spec pattern (`openai:gpt-4o*`)."""
    source: str = Field(default="built-in", exclude=True)
    """Where the table was read from (not part of the file)."""

    def price_of(self, spec: str) -> ModelPrice | None:
        """The entry for a model spec: an exact key, else the most specific matching
        pattern (the longest); None when the table has no price for it."""
        if spec in self.models:
            return self.models[spec]
        matches = [key for key in self.models if fnmatch.fnmatchcase(spec, key)]
        if not matches:
            return None
        return self.models[max(matches, key=len)]

    def cost(self, spec: str, usage: Usage, *, batch: bool = False) -> float | None:
        """Cost of one call's usage; None when unpriced.

        A call for N sampled replies sent as one request (`n = N`) is priced as the
        provider bills it: its prompt once, and the N replies' output tokens, which the
        provider reports summed. A call sent as N requests (a provider without `n`) has
        the N prompts in its usage, each billed."""
        price = self.price_of(spec)
        if price is None:
            return None
        inputs = usage.input_tokens
        cached = min(usage.cached_tokens, inputs)
        cached_price = price.input if price.cached_input is None else price.cached_input
        total = (
            (inputs - cached) * price.input
            + cached * cached_price
            + usage.output_tokens * price.output
        ) / PER
        if batch:
            discount = price.batch_discount or self.defaults.batch_discount
            total *= discount
        return total


def load_price_table(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> PriceTable:
    """The price table: `path`, else $MINDSHIFT_PRICES, else the one shipped with mindshift."""
    env = os.environ if environ is None else environ
    if path is None and env.get(PRICES_ENV, "").strip():
        path = Path(env[PRICES_ENV].strip())
    if path is None:
        text = (
            resources.files("mindshift.harness").joinpath(SHIPPED_TABLE).read_text(encoding="utf-8")
        )
        source = f"built-in {SHIPPED_TABLE}"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read price table {path}: {error}") from None
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: malformed TOML: {error}") from None
    try:
        table = PriceTable.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe_validation_error(error)}") from None
    return table.model_copy(update={"source": source})


@dataclass
class CostLine:
    """Usage and cost of one model's calls."""

    model: str
    spec: str
    calls: int = 0
    failed: int = 0
    batched: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = 0.0
    """None when the table has no price for the model."""
    retired: int = 0
    """Records of earlier failed outcomes (failures.jsonl) whose usage is counted too."""

    def add(self, record: CallRecord, table: PriceTable, *, retired: bool = False) -> None:
        usage = record.usage
        batch = record.batch_id is not None
        self.calls += 0 if retired else 1
        self.retired += 1 if retired else 0
        self.failed += 1 if record.error is not None and not retired else 0
        self.batched += 1 if batch else 0
        self.input_tokens += usage.input_tokens
        self.cached_tokens += usage.cached_tokens
        self.output_tokens += usage.output_tokens
        self.reasoning_tokens += usage.reasoning_tokens
        cost = table.cost(self.spec, usage, batch=batch)
        self.cost = None if cost is None or self.cost is None else self.cost + cost


@dataclass
class CostReport:
    """The cost of a run's logged calls, by model."""

    table: PriceTable
    lines: dict[str, CostLine] = field(default_factory=dict)

    @property
    def total(self) -> float | None:
        costs = [line.cost for line in self.lines.values()]
        return None if any(cost is None for cost in costs) else sum(c or 0.0 for c in costs)


def cost_of_records(
    records: Iterable[CallRecord], table: PriceTable, retired: Iterable[CallRecord] = ()
) -> CostReport:
    """Usage and cost by model of stored records (calls.jsonl) and of retired failures
    (failures.jsonl), which were billed too when they carry usage."""
    report = CostReport(table)
    for source, is_retired in ((records, False), (retired, True)):
        for record in source:
            line = report.lines.get(record.model)
            if line is None:
                line = report.lines[record.model] = CostLine(record.model, record.spec or "?")
            line.add(record, table, retired=is_retired)
    return report
