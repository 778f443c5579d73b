from common.urls import (  # noqa: F401  (Django's error views as JSON)
    handler400,
    handler403,
    handler404,
    handler500,
    openapi_urlpatterns,
    service_urlpatterns,
)

# The schema and docs first: `/api/v1/orders/<anything>` is an order id otherwise.
urlpatterns = openapi_urlpatterns() + service_urlpatterns("order_svc.orders.urls")
