"""URL map: the guide's /v1/billing API, Stripe webhooks, docs, health, metrics and the admin."""

import uuid

from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts import views as account_views
from backoffice import views as backoffice_views
from billing_site import views as site_views
from charges import views as charge_views
from purchases import views as purchase_views
from usage import views as usage_views
from webhooks import views as webhook_views


class AnyCaseUUIDConverter:
    """A UUID in either case (Django's own converter matches lower case only)."""

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value: uuid.UUID) -> str:
        return str(value)


register_converter(AnyCaseUUIDConverter, "anyuuid")

# The billing API's routes, "v1/billing/" written into each.
api = [
    path("v1/billing/credits/check", account_views.CreditCheckView.as_view(), name="credits-check"),
    path("v1/billing/credits", account_views.CreditGrantView.as_view(), name="credits-grant"),
    path("v1/billing/charges", charge_views.ChargeCreateView.as_view(), name="charges-create"),
    path("v1/billing/accounts", account_views.AccountCreateView.as_view(), name="accounts-create"),
    path("v1/billing/accounts/<anyuuid:account_id>", account_views.AccountDetailView.as_view(), name="accounts-detail"),
    path(
        "v1/billing/accounts/<anyuuid:account_id>/transactions",
        account_views.AccountTransactionsView.as_view(),
        name="accounts-transactions",
    ),
    path(
        "v1/billing/accounts/<anyuuid:account_id>/usage", usage_views.AccountUsageView.as_view(), name="accounts-usage"
    ),
    path("v1/billing/litellm/usage", usage_views.UsageCreateView.as_view(), name="litellm-usage"),
    path("v1/billing/transactions", usage_views.TransactionsView.as_view(), name="transactions-by-identity"),
    path("v1/billing/purchases", purchase_views.PurchaseCreateView.as_view(), name="purchases-create"),
    path("v1/billing/purchases/<str:payment_id>", purchase_views.PurchaseDetailView.as_view(), name="purchases-detail"),
    path(
        "v1/billing/purchases/<str:payment_id>/status",
        purchase_views.PurchaseStatusView.as_view(),
        name="purchases-status",
    ),
]

urlpatterns = [
    *api,
    path("", include("stores.urls")),
    path("v1/tools/", include("tools.urls")),
    path("health", site_views.health, name="health"),
    path("metrics", site_views.metrics_view, name="metrics"),
    # Our webhook view (webhooks.views: our refusals, then dj-stripe stores and verifies);
    # with and without the trailing slash, ahead of dj-stripe's own (slash-less) route.
    path("stripe/webhook/<uuid:uuid>/", webhook_views.StripeWebhookView.as_view(), name="stripe-webhook"),
    path("stripe/webhook/<uuid:uuid>", webhook_views.StripeWebhookView.as_view()),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="swagger-ui"),
    path("redoc", SpectacularRedocView.as_view(url_name="openapi-schema"), name="redoc"),
    path("admin/dashboard/", admin.site.admin_view(backoffice_views.dashboard), name="admin-dashboard"),
    path("admin/", admin.site.urls),
]

handler400 = "billing_site.exceptions.bad_request"
handler403 = "billing_site.exceptions.permission_denied"
handler404 = "billing_site.exceptions.page_not_found"
handler500 = "billing_site.exceptions.server_error"
