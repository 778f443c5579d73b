from common.urls import (  # noqa: F401  (Django's error views as JSON)
    handler400,
    handler403,
    handler404,
    handler500,
    openapi_urlpatterns,
    service_urlpatterns,
)

urlpatterns = service_urlpatterns("product_svc.catalog.urls") + openapi_urlpatterns()
