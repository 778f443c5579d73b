"""Where admin users are shadows (every service but the account service), the users'
page lists them read-only, and groups are gone: roles come from the account service."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User

from common.admin import ReadOnlyAdminMixin


class ShadowUserAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who has used this admin, with the roles the account service gave them last."""

    list_display = (
        "username",
        "email",
        "first_name",
        "last_name",
        "is_staff",
        "is_superuser",
        "is_active",
        "last_login",
    )
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("email", "username")
    fields = list_display
    readonly_fields = list_display
    ordering = ("-last_login",)


if get_user_model() is User:
    for model in (User, Group):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
    admin.site.register(User, ShadowUserAdmin)
