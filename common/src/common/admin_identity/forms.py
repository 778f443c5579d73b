"""The login form of every admin: email and password of an account-service staff account."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm

from common.admin_identity.identity import IdentityThrottled, IdentityUnavailable

EMAIL_MAX_LENGTH = 254


class AdminLoginForm(AdminAuthenticationForm):
    """Django's admin login form, labelled for an email, that turns a throttled login
    and an account service that does not answer into form errors (not a 500)."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        # Django's words, with "email" where it would say the shadow model's "username".
        "invalid_login": "Please enter the correct email and password for a staff account.",
        "throttled": "Too many failed logins; try again in %(seconds)s seconds.",
        "unavailable": (
            "The account service, which checks every admin login, is not answering;"
            " try again in a moment."
        ),
    }

    def __init__(self, request: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        username = cast(forms.CharField, self.fields["username"])
        username.label = "Email"
        # Shadow users' usernames are short, but the login takes an email.
        username.max_length = EMAIL_MAX_LENGTH
        username.widget.attrs["maxlength"] = str(EMAIL_MAX_LENGTH)
        username.widget.attrs["autocomplete"] = "email"

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except IdentityThrottled as throttled:
            raise forms.ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"seconds": throttled.retry_after},
            ) from None
        except IdentityUnavailable:
            raise forms.ValidationError(
                self.error_messages["unavailable"], code="unavailable"
            ) from None
