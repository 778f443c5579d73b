from common.urls import (  # noqa: F401  (Django's error views as JSON)
    handler400,
    handler403,
    handler404,
    handler500,
    openapi_urlpatterns,
    service_urlpatterns,
)

# The schema and docs first: `/api/v1/payments/<anything>` is a payment id otherwise.
urlpatterns = openapi_urlpatterns() + service_urlpatterns("payment_svc.payments.urls")
