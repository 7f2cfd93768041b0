"""dj-stripe's models in the back office: there to look at, never to edit.

dj-stripe registers its ~40 models with add, change and delete, and with custom action
pages (`.../action/<name>/<model>/`) that call Stripe and check no permission beyond
staff. Nothing there is staff's to edit: the webhook endpoint is made by
`manage.py setup_stripe_webhook`, every other row is dj-stripe's copy of a Stripe object.
A staff user able to add a WebhookEndpoint with validation off could forge payments to it.

So each of dj-stripe's registrations is replaced here by a read-only one: no add, change
or delete for anyone (superusers included), no actions, no custom pages, no field whose
name says it holds a secret. Stripe's own API keys (djstripe.APIKey) are not shown at all.
"""

from __future__ import annotations

import djstripe.admin  # noqa: F401  (dj-stripe's registrations must exist before they are replaced)
from django.contrib import admin
from django.db import models
from djstripe.models import APIKey

from backoffice.admin.base import ReadOnlyAdmin

HIDDEN: tuple[type[models.Model], ...] = (APIKey,)
_ALWAYS_LISTED = ("id",)
_LISTED_LAST = ("created", "livemode")


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _field_of(lookup: str) -> str:
    return lookup.lstrip("=^@").split("__")[0]


def read_only_admin(model: type[models.Model], original: admin.ModelAdmin) -> type[admin.ModelAdmin]:
    """A read-only admin for `model` that keeps what `original` listed, filtered and searched
    by, as far as those are the model's own fields (not the original admin's methods)."""
    fields = {f.name for f in model._meta.get_fields() if f.concrete}
    plain = [name for name in original.list_display if isinstance(name, str) and name in fields]
    return type(
        f"{model.__name__}ReadOnlyAdmin",
        (ReadOnlyAdmin,),
        {
            "__module__": __name__,
            "actions": None,
            "list_display": [
                "__str__",
                *_unique([n for n in (*_ALWAYS_LISTED, *plain, *_LISTED_LAST) if n in fields]),
            ],
            "list_filter": _unique(
                [n for n in (*original.list_filter, *_LISTED_LAST) if isinstance(n, str) and n in fields]
            ),
            "search_fields": _unique(
                [s for s in (*_ALWAYS_LISTED, *original.search_fields) if isinstance(s, str) and _field_of(s) in fields]
            ),
            "exclude": sorted(name for name in fields if "secret" in name),
            "show_full_result_count": False,
        },
    )


def lock_down(site: admin.AdminSite = admin.site) -> None:
    for model, original in list(site._registry.items()):
        if model._meta.app_label != "djstripe":
            continue
        site.unregister(model)
        if model not in HIDDEN:
            site.register(model, read_only_admin(model, original))


lock_down()
