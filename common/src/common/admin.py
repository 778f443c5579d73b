"""Admin pieces the services share (Django's admin also autodiscovers this module: it
registers nothing)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """No add, no change, no delete: for records only their saga may write.

    Put it before `admin.ModelAdmin` (or an inline) in the bases.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
