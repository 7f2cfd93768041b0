from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Stripe webhooks"

    def ready(self) -> None:
        from purchases.stripe_api import configure_global_client

        # dj-stripe's requests (webhooks.mirror): bounded, and never inside a transaction.
        configure_global_client()
