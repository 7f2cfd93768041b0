"""The Django admin as a back office.

Money and status are read-only everywhere: they change only through the account actions
(backoffice.admin.accounts), each behind a confirmation form and a permission, each calling
a service that writes a ledger entry naming the staff user. Charges, purchases and ledger
entries are read-only (backoffice.admin.records), and so are dj-stripe's models
(backoffice.admin.stripe_objects); API keys in backoffice.admin.api_keys.
"""

from django.contrib import admin
from rest_framework_api_key.models import APIKey as LibraryAPIKey

from backoffice.admin import accounts, api_keys, records, stripe_objects

admin.site.site_header = "CIRIS Billing back office"
admin.site.site_title = "CIRIS Billing"
admin.site.index_title = "Back office"
admin.site.index_template = "backoffice/admin_index.html"

# The library's own concrete key model is unused (ours carries scopes and tenant).
if admin.site.is_registered(LibraryAPIKey):
    admin.site.unregister(LibraryAPIKey)

__all__ = ["accounts", "api_keys", "records", "stripe_objects"]
