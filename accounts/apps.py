import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger(__name__)


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import schema, signals  # noqa: F401  (OpenAPI auth scheme; key cache invalidation)

        if not settings.API_KEYS_REQUIRED:
            logger.warning("API_KEYS_REQUIRED is off: every caller may move money. Use this only on a private network.")
