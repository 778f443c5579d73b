"""Routes of the staff saga API; the edge sends /api/v1/sagas/... here."""

from django.urls import path

from orchestrator_svc.sagas import apis

urlpatterns = [
    path("api/v1/sagas", apis.SagaListApi.as_view(), name="saga-list"),
    path("api/v1/sagas/", apis.SagaListApi.as_view()),
    path("api/v1/sagas/<uuid:purchase_id>", apis.SagaDetailApi.as_view(), name="saga-detail"),
    path("api/v1/sagas/<uuid:purchase_id>/", apis.SagaDetailApi.as_view()),
]
