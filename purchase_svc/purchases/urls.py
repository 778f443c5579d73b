"""Routes of the purchase API; the edge sends /api/v1/purchases... here."""

from django.urls import path

from purchase_svc.purchases import apis

PREFIX = "api/v1/purchases"

urlpatterns = [
    path(PREFIX, apis.PurchasesApi.as_view(), name="purchases"),
    path(f"{PREFIX}/<uuid:purchase_id>", apis.PurchaseDetailApi.as_view(), name="purchase"),
    path(
        f"{PREFIX}/<uuid:purchase_id>/cancel",
        apis.PurchaseCancelApi.as_view(),
        name="purchase-cancel",
    ),
    path(
        f"{PREFIX}/<uuid:purchase_id>/events",
        apis.PurchaseEventsApi.as_view(),
        name="purchase-events",
    ),
]
