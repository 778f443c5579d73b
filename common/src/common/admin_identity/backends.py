"""Authentication backends of the admins: who may log in, and what staff may do.

`AccountServiceBackend` serves the five services whose admin users are shadows of
account-service accounts: a user `account-<customer id>` with no usable password, whose
name, email and roles are copied from the account service at login and on every admin
request (`get_user`, which Django calls once per request that reads `request.user`: the
admin's pages). The account service itself uses its own backend on its own table
(account_svc.accounts.admin_auth); `StaffViewsBackend` serves all six.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

from common.admin_identity import identity
from common.admin_identity.identity import IdentityRefused, StaffIdentity

SHADOW_PREFIX = "account-"


def shadow_username(customer_id: int) -> str:
    """The local username of an account-service account: keyed by its id, which never
    changes (an email may)."""
    return f"{SHADOW_PREFIX}{customer_id}"


def customer_id_of(user: AbstractBaseUser) -> int | None:
    """The account-service id a shadow user stands for; None for any other user."""
    suffix = user.get_username().removeprefix(SHADOW_PREFIX)
    if suffix == user.get_username() or not suffix.isdigit():
        return None
    return int(suffix)


def client_address(request: HttpRequest | None) -> str:
    """The client's address as the edge saw it (the last X-Forwarded-For hop, as the
    API's throttles read it), for the account service's login throttle."""
    if request is None:
        return ""
    # get_ident reads only request.META, which a plain HttpRequest has too.
    return str(BaseThrottle().get_ident(cast(Any, request)) or "")


def shadow_user_sync(found: StaffIdentity) -> Any:
    """The shadow user of `found`, created or brought up to date with it."""
    user_model = get_user_model()
    fields = {
        "email": found.email,
        "first_name": found.first_name,
        "last_name": found.last_name,
        "is_active": found.is_active,
        "is_staff": found.is_staff,
        "is_superuser": found.is_superuser,
    }
    user, created = user_model._default_manager.get_or_create(
        username=shadow_username(found.customer_id), defaults=fields
    )
    if created:
        # Only the account service checks passwords (and a random one here would
        # change the session hash, logging the user out).
        user.set_unusable_password()
        user.save(update_fields=["password"])
        return user
    changed = [name for name, value in fields.items() if getattr(user, name) != value]
    if changed:
        for name in changed:
            setattr(user, name, fields[name])
        user.save(update_fields=changed)
    return user


class AccountServiceBackend(BaseBackend):
    """Log in with an account-service staff account; re-check its roles on each request."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """The shadow user of the staff account these credentials name, or None (the
        admin's usual login error). IdentityThrottled and IdentityUnavailable go up to
        the login form (forms.AdminLoginForm), which says what they mean."""
        if not username or password is None:
            return None
        try:
            found = identity.identity_source().login(
                email=username, password=password, client_address=client_address(request)
            )
        except IdentityRefused:
            return None
        if not found.may_use_admin:
            return None
        return shadow_user_sync(found)

    def get_user(self, user_id: int) -> Any:
        """The session's user, with the roles the account service gives it now; None
        (logged out) once it is no longer active staff. IdentityUnavailable goes up to
        the middleware (503): without an answer nobody is let in."""
        user = get_user_model()._default_manager.filter(pk=user_id).first()
        customer_id = customer_id_of(user) if user is not None else None
        if customer_id is None:
            return None
        try:
            found = identity.identity_source().roles(customer_id=customer_id)
        except IdentityRefused:  # the account is gone
            return None
        user = shadow_user_sync(found)
        return user if found.may_use_admin else None


def _is_active_staff(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user.is_active and getattr(user, "is_staff", False))


class StaffViewsBackend(BaseBackend):
    """Staff may view every model of an admin, and change none: the `view_*`
    permissions of every app. Superusers need nothing here (they have every one)."""

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        codename = perm.partition(".")[2]
        return _is_active_staff(user_obj) and codename.startswith("view_")

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return _is_active_staff(user_obj)
