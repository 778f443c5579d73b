import pytest
from django.test import Client

from common.testing import assert_healthy


@pytest.mark.live
@pytest.mark.django_db
def test_healthz_reports_the_database_and_every_dependency_ok(client: Client) -> None:
    assert_healthy(client)
