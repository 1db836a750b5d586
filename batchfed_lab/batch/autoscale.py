"""Autoscale: evaluate a formula without applying it, enable one, force an evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.batch import models as bm

from ..errors import BatchError
from ._util import as_timedelta
from .connection import BatchConnection
from .errors import batch_call

__all__ = ["AutoscaleEvaluation", "AutoscaleOperations"]


@dataclass(frozen=True)
class AutoscaleEvaluation:
    """The result of evaluating an autoscale formula: ``$Name`` → value, or the error."""

    results: dict[str, str]
    error: str | None = None
    timestamp: datetime | None = None


def _parse_autoscale_results(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (text or "").split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


class AutoscaleOperations(BatchConnection):
    """The autoscale calls of an account's pools."""

    def evaluate_autoscale(self, pool_id: str, formula: str | None = None) -> AutoscaleEvaluation:
        """Evaluate ``formula`` (default: the pool's own) without applying it."""
        if formula is None:
            with batch_call(self._what(f"get pool '{pool_id}'")):
                formula = self._client.get_pool(pool_id, select=["id", "autoScaleFormula"]).auto_scale_formula
            if not formula:
                raise BatchError(self._what(f"pool '{pool_id}' has no autoscale formula"), code="AutoScalingNotEnabled")
        with batch_call(self._what(f"evaluate autoscale of pool '{pool_id}'")):
            run = self._client.evaluate_pool_auto_scale(pool_id, bm.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=formula))
        err = run.error
        error = f"{err.code}: {err.message}" if err else None
        return AutoscaleEvaluation(_parse_autoscale_results(run.results), error, run.timestamp)

    def enable_autoscale(self, pool_id: str, formula: str, evaluation_interval: timedelta | float | None = None) -> None:
        """Enable (or re-apply) autoscale; the service evaluates the formula at once."""
        with batch_call(self._what(f"enable autoscale of pool '{pool_id}'")):
            self._client.enable_pool_auto_scale(
                pool_id,
                bm.BatchPoolEnableAutoScaleOptions(
                    auto_scale_formula=formula, auto_scale_evaluation_interval=as_timedelta(evaluation_interval)
                ),
            )

    def reevaluate_autoscale(self, pool_id: str) -> bool:
        """Force an autoscale evaluation now (``evaluate_autoscale`` after a placement, SPEC §4.3)
        by re-enabling the pool's own formula and interval, as the original did. False when the
        pool does not autoscale or the service refuses because it was asked too recently."""
        with batch_call(self._what(f"get pool '{pool_id}'")):
            pool = self._client.get_pool(
                pool_id, select=["id", "enableAutoScale", "autoScaleFormula", "autoScaleEvaluationInterval"]
            )
        if not pool.enable_auto_scale or not pool.auto_scale_formula:
            return False
        try:
            self.enable_autoscale(pool_id, pool.auto_scale_formula, pool.auto_scale_evaluation_interval)
        except BatchError as exc:
            if exc.code == "TooManyEnableAutoScaleRequests":
                return False
            raise
        return True
