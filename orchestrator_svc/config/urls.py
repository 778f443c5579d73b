from common.urls import (  # noqa: F401  (Django reads the handlers from the root urlconf)
    handler400,
    handler403,
    handler404,
    handler500,
    openapi_urlpatterns,
    service_urlpatterns,
)

urlpatterns = [
    *service_urlpatterns("orchestrator_svc.sagas.urls"),
    *openapi_urlpatterns(),
]
