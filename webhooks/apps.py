from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Stripe webhooks"

    def ready(self) -> None:
        # Connects the dj-stripe receivers (after dj-stripe's own, which are connected first).
        from purchases.stripe_api import configure_global_client
        from webhooks import handlers, stripe_sync  # noqa: F401

        # dj-stripe's receivers call Stripe: bound those calls, and keep them out of the
        # webhook's transaction (webhooks.stripe_sync).
        configure_global_client()
        stripe_sync.install()
