"""The payment routes, under the prefix the edge sends to this service.

A trailing slash is optional. Any id reaches the view, which answers 404 in the
JSON error shape for one that is not a UUID (after authentication: anonymous is 401).
"""

from __future__ import annotations

from django.urls import re_path

from payment_svc.payments import apis

urlpatterns = [
    re_path(r"^api/v1/payments/?$", apis.PaymentListApi.as_view(), name="payment-list"),
    re_path(
        r"^api/v1/payments/(?P<payment_id>[^/]+)/?$",
        apis.PaymentDetailApi.as_view(),
        name="payment-detail",
    ),
]
