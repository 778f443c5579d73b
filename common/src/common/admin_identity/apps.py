from django.apps import AppConfig


class AdminIdentityConfig(AppConfig):
    """Puts the login form that speaks of throttling and outages on every admin."""

    name = "common.admin_identity"
    label = "admin_identity"

    def ready(self) -> None:
        from django.contrib import admin

        from common.admin_identity.forms import AdminLoginForm

        admin.site.login_form = AdminLoginForm
