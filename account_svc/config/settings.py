"""Settings of the account service: the shared ones plus what only it needs."""

from common.settings import build, env, simple_jwt_settings

_settings = build(
    "account",
    apps=["account_svc.accounts", "rest_framework_simplejwt.token_blacklist"],
    health_checks=[],
    extra={
        "AUTH_USER_MODEL": "accounts.Customer",
        "GRPC_SERVICERS": ["account_svc.accounts.grpc.register"],
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
        # Failed logins per email / per client within the window before 429
        # (account_svc.accounts.throttling).
        "LOGIN_THROTTLE_WINDOW_SECONDS": int(env("LOGIN_THROTTLE_WINDOW_SECONDS", "300")),
        "LOGIN_THROTTLE_EMAIL_THRESHOLD": int(env("LOGIN_THROTTLE_EMAIL_THRESHOLD", "5")),
        "LOGIN_THROTTLE_IP_THRESHOLD": int(env("LOGIN_THROTTLE_IP_THRESHOLD", "100")),
    },
)
_settings["SIMPLE_JWT"] = simple_jwt_settings(_settings)
globals().update(_settings)
