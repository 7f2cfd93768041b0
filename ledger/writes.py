"""The write of a ledger movement: the account's compare-and-set UPDATE, its entries and an
optional row they reference (a charge), as ONE statement on PostgreSQL.

Why by hand: a charge through the ORM is an UPDATE, a bulk INSERT and a Model.create, and
compiling those three costs about 0.7 ms of CPU per charge, twice what the request spends
on everything else beyond its SQL (bench/RESULTS.md), plus two round trips. Here the SQL is
generated from the models' own field definitions (columns, `pre_save`, `get_db_prep_save`),
so it cannot drift from them, and runs as one data-modifying CTE: the UPDATE returns the
row only when it still holds the values the movement was computed from, and the INSERTs
select from it, so a stale account writes nothing at all. No signals are sent (there are no
receivers for these models, and bulk_create sends none either). Other databases (SQLite
for `make run`) write the same rows through the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Model


def _is_text(db_type: str) -> bool:
    return db_type.startswith(("varchar", "text", "char"))


def _insert_rows(
    model: type[Model], objs: Sequence[Model], connection: Any, params: list[Any]
) -> tuple[str, list[str]]:
    """`INSERT INTO table (columns) SELECT * FROM (VALUES ...)`, its values appended to params.

    Values are typed by casts (an untyped NULL in VALUES would be text), except text
    columns: a cast to varchar(n) would truncate where an INSERT refuses.
    """
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.auto_field]
    qn = connection.ops.quote_name
    casts = []
    for field in fields:
        db_type = field.db_type(connection)
        casts.append("%s" if _is_text(db_type) else f"%s::{db_type}")
    rows = []
    for obj in objs:
        for field in fields:
            value = field.pre_save(obj, True)  # what an INSERT through the ORM does (auto_now_add)
            if hasattr(value, "resolve_expression"):
                raise ValueError(f"{meta.label}.{field.name}: expressions are not written here")
            params.append(field.get_db_prep_save(value, connection))
        rows.append(f"({', '.join(casts)})")
    columns = ", ".join(qn(f.column) for f in fields)
    sql = f"INSERT INTO {qn(meta.db_table)} ({columns}) SELECT * FROM (VALUES {', '.join(rows)}) AS v"
    return sql, [f.attname for f in fields]


def write_movement(
    *,
    account: Model,
    changes: dict[str, Any],
    expected: dict[str, Any],
    entries: Sequence[Model],
    companion: Model | None = None,
) -> list[Model] | None:
    """UPDATE the account with `changes` where it still has the `expected` values, and INSERT
    `companion` (filled in as an ORM insert fills it: auto_now_add) and `entries`. Returns the
    entries as saved (with their ids), or None when the row did not match (nothing was
    written). Call inside the caller's transaction.
    """
    if not entries:
        raise ValueError("a movement writes at least one ledger entry")
    model = type(account)
    using = router.db_for_write(model)
    connection = connections[using]
    if connection.vendor != "postgresql":
        return _write_with_orm(
            account=account, changes=changes, expected=expected, entries=entries, companion=companion
        )
    meta = model._meta
    qn = connection.ops.quote_name
    params: list[Any] = []
    assignments = []
    for name, value in changes.items():
        field = meta.get_field(name)
        assignments.append(f"{qn(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    conditions = [f"{qn(meta.pk.column)} = %s"]
    params.append(meta.pk.get_db_prep_value(account.pk, connection))
    for name, value in expected.items():
        field = meta.get_field(name)
        conditions.append(f"{qn(field.column)} IS NOT DISTINCT FROM %s")
        params.append(field.get_db_prep_value(value, connection))
    sql = (
        f"WITH account AS (UPDATE {qn(meta.db_table)} SET {', '.join(assignments)}"
        f" WHERE {' AND '.join(conditions)} RETURNING 1)"
    )
    if companion is not None:
        insert, _ = _insert_rows(type(companion), [companion], connection, params)
        sql += f", companion AS ({insert} WHERE EXISTS (SELECT 1 FROM account))"
    entry_model = type(entries[0])
    insert, attnames = _insert_rows(entry_model, entries, connection, params)
    pk = entry_model._meta.pk
    sql += f" {insert} WHERE EXISTS (SELECT 1 FROM account) RETURNING {qn(pk.column)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return None
    return [
        entry_model.from_db(using, [pk.attname, *attnames], [entry_id, *(getattr(e, a) for a in attnames)])
        for entry_id, e in zip(ids, entries, strict=True)
    ]


def _write_with_orm(
    *,
    account: Model,
    changes: dict[str, Any],
    expected: dict[str, Any],
    entries: Sequence[Model],
    companion: Model | None,
) -> list[Model] | None:
    model = type(account)
    if model._default_manager.filter(pk=account.pk, **expected).update(**changes) != 1:
        return None
    saved = type(entries[0])._default_manager.bulk_create(list(entries))
    if companion is not None:
        companion.save(force_insert=True)
    return saved
