"""LLM usage records: what an interaction cost the provider, one record per (account, interaction)."""

from __future__ import annotations

from django.db import models

# Provider cost in cents with sub-cent precision: 10 decimal places, and room for the sum of
# many posts of up to 10^12 cents each (see usage.serializers).
COST_MAX_DIGITS = 30
COST_DECIMAL_PLACES = 10
COUNT_FIELDS = (
    "total_llm_calls",
    "total_prompt_tokens",
    "total_completion_tokens",
    "duration_ms",
    "error_count",
    "fallback_count",
)


class UsageRecord(models.Model):
    """An interaction's totals as the LLM proxy reported them (see usage.services.usage_record).

    The total columns are what the API and the reports show; `per_call` and `aggregate` keep the
    two kinds of report separately (sums of per-call posts, the largest aggregated post) so each
    new post can be merged without counting a call twice. Not money: the charge for the
    interaction is the Charge with idempotency key `litellm:{interaction_id}` (looked up, since
    usage and charge arrive in either order).
    """

    # A monotonically increasing id: a stable newest-first order for cursor pagination.
    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="usage_records")
    interaction_id = models.CharField(max_length=255)
    total_llm_calls = models.BigIntegerField(default=0)
    total_prompt_tokens = models.BigIntegerField(default=0)
    total_completion_tokens = models.BigIntegerField(default=0)
    models_used = models.JSONField(default=list, blank=True)
    actual_cost_cents = models.DecimalField(
        max_digits=COST_MAX_DIGITS, decimal_places=COST_DECIMAL_PLACES, default=0, help_text="Provider cost in cents."
    )
    duration_ms = models.BigIntegerField(default=0)
    error_count = models.BigIntegerField(default=0)
    fallback_count = models.BigIntegerField(default=0)
    # The two sources of the totals: {"posts": n, <count field>: int, ..., "actual_cost_cents": "decimal"}.
    per_call = models.JSONField(default=dict, blank=True)
    aggregate = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One record per interaction: concurrent first posts insert once (ON CONFLICT DO NOTHING).
            models.UniqueConstraint(fields=["account", "interaction_id"], name="usage_unique_account_interaction"),
            models.CheckConstraint(condition=models.Q(actual_cost_cents__gte=0), name="usage_cost_gte_0"),
            *(
                models.CheckConstraint(condition=models.Q(**{f"{name}__gte": 0}), name=f"usage_{name}_gte_0")
                for name in COUNT_FIELDS
            ),
        ]
        indexes = [models.Index(fields=["account", "-id"], name="usage_account_newest")]

    def __str__(self) -> str:
        return f"usage {self.interaction_id} ({self.total_llm_calls} calls, {self.actual_cost_cents} cents)"

    @property
    def charge_idempotency_key(self) -> str:
        return f"litellm:{self.interaction_id}"
