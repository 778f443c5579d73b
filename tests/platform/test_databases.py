"""Every service owns its database: its role opens it, and no other role can."""

import psycopg2
import pytest

from common.testing import connect
from common.topology import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_each_role_opens_its_own_database(service: str) -> None:
    with connect(service) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_user, current_database()")
        assert cur.fetchone() == (SERVICES[service].db_role, SERVICES[service].database)
    conn.close()


@pytest.mark.parametrize("service", SERVICES)
def test_a_role_cannot_open_another_services_database(service: str) -> None:
    others = [s for s in SERVICES.values() if s.name != service]
    for other in others:
        with pytest.raises(psycopg2.OperationalError, match="permission denied"):
            connect(service, database=other.database)
