from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """Staff tools: the Django admin, the dashboard, and the operators' manage.py commands.

    It owns no tables: everything it changes goes through the accounts and ledger services.
    """

    name = "backoffice"
    verbose_name = "Back office"
