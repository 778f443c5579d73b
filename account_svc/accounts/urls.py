"""Routes of the account API; the edge sends /api/v1/account/... here."""

from django.urls import path

from account_svc.accounts import apis

PREFIX = "api/v1/account/"

urlpatterns = [
    path(f"{PREFIX}auth/register", apis.RegisterApi.as_view(), name="auth-register"),
    path(f"{PREFIX}auth/login", apis.LoginApi.as_view(), name="auth-login"),
    path(f"{PREFIX}auth/refresh", apis.RefreshApi.as_view(), name="auth-refresh"),
    path(f"{PREFIX}auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path(f"{PREFIX}customer/personal", apis.PersonalApi.as_view(), name="customer-personal"),
    path(f"{PREFIX}customer/delivery", apis.DeliveryApi.as_view(), name="customer-delivery"),
]
