"""The API contract suite: every service's OpenAPI schema against its real answers.

Like tests/e2e, nothing here imports a service: schemathesis reads each service's schema
through the edge, generates requests from it and sends them through the edge, as a staff
member and as a customer, with tokens got as users get them (common.testing).
"""

from __future__ import annotations

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from common.settings import VAR_DIR
from common.testing import Customer, new_email, new_staff, register_customer

# Hypothesis keeps its files (an example database, caches) in the platform's state
# directory, not in the working tree.
set_hypothesis_home_dir(VAR_DIR / "contract" / "hypothesis")

PASSWORD = "contract-tests-Secret-42"


@pytest.fixture(scope="session")
def callers() -> dict[str, Customer]:
    """A staff member and a customer, each with an access token (valid 15 minutes,
    longer than the run)."""
    return {
        "staff": new_staff(new_email("contract", "staff"), password=PASSWORD, retry=True),
        "customer": register_customer(new_email("contract"), password=PASSWORD, retry=True),
    }
