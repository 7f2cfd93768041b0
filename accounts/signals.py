"""Drop a key's cached copy whenever it changes, so a revocation takes effect at once."""

from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.auth import api_key_cache_key, forget_local_key
from accounts.models import ApiKey


@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
def forget_cached_api_key(sender: type[ApiKey], instance: ApiKey, **kwargs: Any) -> None:
    key = api_key_cache_key(instance.prefix)
    cache.delete(key)
    forget_local_key(instance.prefix)

    def forget_again() -> None:
        # Again after commit: a request between the save and the commit may have re-cached
        # the old row (e.g. a revocation made inside the admin's transaction).
        cache.delete(key)
        forget_local_key(instance.prefix)

    transaction.on_commit(forget_again)
