"""Settings of the account service: the shared ones plus what only it needs."""

from common.settings import build, env, env_bool, simple_jwt_settings

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
        # Login throttling (account_svc.accounts.throttling, docs/adr/0016): failed
        # logins within the window, per account and client, per client address, and
        # per account from clients it does not know, before 429.
        "LOGIN_THROTTLE_WINDOW_SECONDS": int(env("LOGIN_THROTTLE_WINDOW_SECONDS", "300")),
        "LOGIN_THROTTLE_PAIR_THRESHOLD": int(env("LOGIN_THROTTLE_PAIR_THRESHOLD", "5")),
        "LOGIN_THROTTLE_IP_THRESHOLD": int(env("LOGIN_THROTTLE_IP_THRESHOLD", "100")),
        "LOGIN_THROTTLE_EMAIL_THRESHOLD": int(env("LOGIN_THROTTLE_EMAIL_THRESHOLD", "10")),
        # How long a client stays known (device cookie, address) after its last sign-in
        # (account_svc.accounts.login_clients); Secure cookie when served over HTTPS.
        "LOGIN_KNOWN_CLIENT_SECONDS": int(env("LOGIN_KNOWN_CLIENT_SECONDS", str(90 * 86400))),
        "LOGIN_DEVICE_COOKIE_SECURE": env_bool("LOGIN_DEVICE_COOKIE_SECURE", False),
    },
)
_settings["SIMPLE_JWT"] = simple_jwt_settings(_settings)
globals().update(_settings)
