from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Stripe webhooks"

    def ready(self) -> None:
        # Connects the dj-stripe receivers (after dj-stripe's own, which are connected first).
        from webhooks import handlers  # noqa: F401
