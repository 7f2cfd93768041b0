"""Usage posts become rows of their own (UsageEntry); a record's totals are computed from them.

The existing records' folded sources (`per_call`, `aggregate`) become entries that fold to
exactly the same totals: the per-call sums as one per-call entry, the largest aggregate as one
aggregate entry, and the one-call integer posts (kept both summed and as their largest) as
entries whose sum and largest are the same as the originals'.
"""

from decimal import Decimal

import django.db.models.deletion
from django.db import migrations, models

COUNTS = (
    "total_llm_calls",
    "total_prompt_tokens",
    "total_completion_tokens",
    "duration_ms",
    "error_count",
    "fallback_count",
)
COST = "actual_cost_cents"


def _values(bucket):
    return {**{name: int(bucket.get(name) or 0) for name in COUNTS}, COST: Decimal(str(bucket.get(COST) or 0))}


def _one_call_integer_entries(ambiguous):
    """Entries whose sum is the bucket's sum and whose largest is its largest: the largest
    itself, then the rest in entries no larger (there were `posts` posts, each no larger)."""
    summed, largest = _values(ambiguous["sum"]), _values(ambiguous["largest"])
    entries = [largest]
    rest = {name: summed[name] - largest[name] for name in summed}
    for _ in range(int(ambiguous["sum"].get("posts") or 0) - 1):
        if not any(rest.values()):
            break
        entry = {name: max(min(largest[name], rest[name]), 0) for name in rest}
        rest = {name: rest[name] - entry[name] for name in rest}
        entries.append(entry)
    return entries


def split_records_into_entries(apps, schema_editor):
    UsageRecord = apps.get_model("usage", "UsageRecord")
    UsageEntry = apps.get_model("usage", "UsageEntry")
    for record in UsageRecord.objects.order_by("id").iterator(chunk_size=500):
        per_call, aggregate = record.per_call or {}, dict(record.aggregate or {})
        ambiguous = aggregate.pop("one_call_integer", None)
        entries = []
        if per_call.get("posts"):
            entries.append(("per_call", _values(per_call)))
        if aggregate.get("posts"):
            entries.append(("aggregate", _values(aggregate)))
        if ambiguous and ambiguous["sum"].get("posts"):
            entries += [("one_call_integer", values) for values in _one_call_integer_entries(ambiguous)]
        if not entries:  # no sources kept: its totals, as an aggregate
            entries.append(("aggregate", {name: getattr(record, name) for name in (*COUNTS, COST)}))
        UsageEntry.objects.bulk_create(
            UsageEntry(record=record, kind=kind, models_used=record.models_used if i == 0 else [], **values)
            for i, (kind, values) in enumerate(entries)
        )
        UsageEntry.objects.filter(record=record).update(created_at=record.updated_at)


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0001_usage_records'),
    ]

    operations = [
        migrations.CreateModel(
            name='UsageEntry',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('kind', models.CharField(choices=[('per_call', 'One LLM call'), ('aggregate', "The interaction's totals so far"), ('one_call_integer', 'One call or the totals of one call')], max_length=16)),
                ('total_llm_calls', models.BigIntegerField(default=0)),
                ('total_prompt_tokens', models.BigIntegerField(default=0)),
                ('total_completion_tokens', models.BigIntegerField(default=0)),
                ('models_used', models.JSONField(blank=True, default=list)),
                ('actual_cost_cents', models.DecimalField(decimal_places=10, default=0, help_text='Provider cost in cents.', max_digits=30)),
                ('duration_ms', models.BigIntegerField(default=0)),
                ('error_count', models.BigIntegerField(default=0)),
                ('fallback_count', models.BigIntegerField(default=0)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.AddField(
            model_name='usageentry',
            name='record',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='entries', to='usage.usagerecord'),
        ),
        migrations.AddConstraint(
            model_name='usageentry',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['per_call', 'aggregate', 'one_call_integer'])), name='usage_entry_kind_valid'),
        ),
        migrations.AddConstraint(
            model_name='usageentry',
            constraint=models.CheckConstraint(condition=models.Q(('actual_cost_cents__gte', 0)), name='usage_entry_cost_gte_0'),
        ),
        migrations.AddConstraint(
            model_name='usageentry',
            constraint=models.CheckConstraint(condition=models.Q(('total_llm_calls__gte', 0)), name='usage_entry_total_llm_calls_gte_0'),
        ),
        migrations.AddConstraint(
            model_name='usageentry',
            constraint=models.CheckConstraint(condition=models.Q(('total_prompt_tokens__gte', 0)), name='usage_entry_total_prompt_tokens_gte_0'),
        ),
        migrations.AddConstraint(
            model_name='usageentry',
            constraint=models.CheckConstraint(condition=models.Q(('total_completion_tokens__gte', 0)), name='usage_entry_total_completion_tokens_gte_0'),
        ),
        migrations.AddConstraint(
            model_name='usageentry',
            constraint=models.CheckConstraint(condition=models.Q(('duration_ms__gte', 0)), name='usage_entry_duration_ms_gte_0'),
        ),
        migrations.AddConstraint(
            model_name='usageentry',
            constraint=models.CheckConstraint(condition=models.Q(('error_count__gte', 0)), name='usage_entry_error_count_gte_0'),
        ),
        migrations.AddConstraint(
            model_name='usageentry',
            constraint=models.CheckConstraint(condition=models.Q(('fallback_count__gte', 0)), name='usage_entry_fallback_count_gte_0'),
        ),
        migrations.RunPython(split_records_into_entries, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(
            model_name='usagerecord',
            name='usage_cost_gte_0',
        ),
        migrations.RemoveConstraint(
            model_name='usagerecord',
            name='usage_total_llm_calls_gte_0',
        ),
        migrations.RemoveConstraint(
            model_name='usagerecord',
            name='usage_total_prompt_tokens_gte_0',
        ),
        migrations.RemoveConstraint(
            model_name='usagerecord',
            name='usage_total_completion_tokens_gte_0',
        ),
        migrations.RemoveConstraint(
            model_name='usagerecord',
            name='usage_duration_ms_gte_0',
        ),
        migrations.RemoveConstraint(
            model_name='usagerecord',
            name='usage_error_count_gte_0',
        ),
        migrations.RemoveConstraint(
            model_name='usagerecord',
            name='usage_fallback_count_gte_0',
        ),
        migrations.RemoveField(
            model_name='usagerecord',
            name='actual_cost_cents',
        ),
        migrations.RemoveField(
            model_name='usagerecord',
            name='aggregate',
        ),
        migrations.RemoveField(
            model_name='usagerecord',
            name='duration_ms',
        ),
        migrations.RemoveField(
            model_name='usagerecord',
            name='error_count',
        ),
        migrations.RemoveField(
            model_name='usagerecord',
            name='fallback_count',
        ),
        migrations.RemoveField(
            model_name='usagerecord',
            name='models_used',
        ),
        migrations.RemoveField(
            model_name='usagerecord',
            name='per_call',
        ),
        migrations.RemoveField(
            model_name='usagerecord',
            name='total_completion_tokens',
        ),
        migrations.RemoveField(
            model_name='usagerecord',
            name='total_llm_calls',
        ),
        migrations.RemoveField(
            model_name='usagerecord',
            name='total_prompt_tokens',
        ),
        migrations.RemoveField(
            model_name='usagerecord',
            name='updated_at',
        ),
    ]
