"""Admin at /admin/account/: customers, searchable by email and name."""

from __future__ import annotations

from django.contrib import admin

from account_svc.accounts.models import Customer


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "email",
        "first_name",
        "last_name",
        "is_staff",
        "is_active",
        "date_joined",
    )
    list_filter = ("is_staff", "is_active", "is_superuser")
    search_fields = ("email", "first_name", "last_name")
    ordering = ("-date_joined",)
    # Passwords change through the API; the admin shows the hash only.
    readonly_fields = ("password", "last_login", "date_joined", "updated_at")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal", {"fields": ("first_name", "last_name", "phone_number", "address")}),
        (
            "Role",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined", "updated_at")}),
    )
    filter_horizontal = ("groups", "user_permissions")

    def has_add_permission(self, request: object) -> bool:
        # Customers register through the API, which checks and hashes the password.
        return False
