"""Stamp a key as changed whenever it is saved or deleted, so a revocation takes effect."""

from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.auth import api_key_cache_key, key_changed
from accounts.models import ApiKey


@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
def forget_cached_api_key(sender: type[ApiKey], instance: ApiKey, **kwargs: Any) -> None:
    # Now, for any cache reader after the commit; and the stamp after the commit, when the
    # database answers with the new row (accounts.auth explains the race).
    cache.delete(api_key_cache_key(instance.prefix))
    prefix = instance.prefix
    transaction.on_commit(lambda: key_changed(prefix))
