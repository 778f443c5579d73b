"""Permission classes shared by the services (the default is IsAuthenticated)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request


def _is_staff(request: Request) -> bool:
    user = request.user
    return bool(user and user.is_authenticated and getattr(user, "is_staff", False))


class IsStaff(BasePermission):
    """Only staff (the `is_staff` claim of the access token); `make staff EMAIL=...` grants it."""

    message = "This action needs a staff account."

    def has_permission(self, request: Request, view: Any) -> bool:
        return _is_staff(request)


class IsStaffOrReadOnly(BasePermission):
    """Anyone may read (GET, HEAD, OPTIONS); only staff may write."""

    message = "Writing needs a staff account."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS or _is_staff(request)
