"""Settings of the account service: the shared ones plus what only it needs."""

from account_svc.accounts.conf import config
from common.jwt_keys import simple_jwt_settings
from common.settings import build

_settings = build(
    "account",
    apps=["account_svc.accounts", "rest_framework_simplejwt.token_blacklist"],
    health_checks=[],
    extra={
        "AUTH_USER_MODEL": "accounts.Customer",
        "GRPC_SERVICERS": ["account_svc.accounts.grpc.register"],
        # The admin's login on the local table, with the other admins' checks (docs/adr/0019).
        "AUTHENTICATION_BACKENDS": [
            "account_svc.accounts.admin_auth.StaffLoginBackend",
            "common.admin_identity.backends.StaffViewsBackend",
        ],
        "AUTH_PASSWORD_VALIDATORS": [
            {
                "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
                "OPTIONS": {"user_attributes": ("email", "first_name", "last_name")},
            },
            {
                "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
                "OPTIONS": {"min_length": 8},
            },
            {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
            {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
        ],
        # LOGIN_*: login throttling and known clients, declared in accounts/conf.py.
        **config.from_environment(),
    },
)
_settings["SIMPLE_JWT"] = simple_jwt_settings(_settings)
globals().update(_settings)
