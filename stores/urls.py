"""The store routes; billing_site.urls includes them at the top level."""

from django.urls import path

from stores import app_store_views, views

urlpatterns = [
    path("v1/billing/google-play/verify", views.GooglePlayVerifyView.as_view(), name="google-play-verify"),
    path(
        "v1/billing/webhooks/google-play",
        views.GooglePlayNotificationView.as_view(),
        name="google-play-notifications",
    ),
    path("v1/tools/purchase/verify", views.ToolPurchaseVerifyView.as_view(), name="tools-purchase-verify"),
    path(
        "v1/user/apple-storekit/verify",
        app_store_views.UserAppStoreVerifyView.as_view(),
        name="user-apple-storekit-verify",
    ),
    path(
        "v1/billing/apple-storekit/verify", app_store_views.AppStoreVerifyView.as_view(), name="apple-storekit-verify"
    ),
    path(
        "v1/billing/webhooks/apple-storekit",
        app_store_views.AppStoreNotificationView.as_view(),
        name="apple-storekit-notifications",
    ),
]
