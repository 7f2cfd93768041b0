from django.urls import path

from tools import views

urlpatterns = [
    path("charge", views.ToolChargeView.as_view(), name="tools-charge"),
    path("check/<str:product_type>", views.ToolCheckView.as_view(), name="tools-check"),
    path("balance", views.ToolBalancesView.as_view(), name="tools-balances"),
    path("balance/<str:product_type>", views.ToolBalanceView.as_view(), name="tools-balance"),
]
