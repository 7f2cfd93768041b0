"""The store routes; billing_site.urls includes them at the top level."""

from django.urls import path

from stores import views

urlpatterns = [
    path("v1/billing/google-play/verify", views.GooglePlayVerifyView.as_view(), name="google-play-verify"),
    path(
        "v1/billing/webhooks/google-play",
        views.GooglePlayNotificationView.as_view(),
        name="google-play-notifications",
    ),
    path("v1/tools/purchase/verify", views.ToolPurchaseVerifyView.as_view(), name="tools-purchase-verify"),
]
