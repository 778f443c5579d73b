"""Settings of the account service: the shared ones plus what only it needs."""

from common.settings import build

globals().update(
    build(
        "account",
        apps=["account_svc.accounts"],
        health_checks=[],
    )
)
