"""The order routes, under the prefix the edge sends to this service.

A trailing slash is optional. Any id reaches the view, which answers 404 in the
JSON error shape for one that is not a UUID (after authentication: anonymous is 401).
"""

from __future__ import annotations

from django.urls import re_path

from order_svc.orders import apis

urlpatterns = [
    re_path(r"^api/v1/orders/?$", apis.OrderListApi.as_view(), name="order-list"),
    re_path(
        r"^api/v1/orders/(?P<order_id>[^/]+)/?$",
        apis.OrderDetailApi.as_view(),
        name="order-detail",
    ),
]
