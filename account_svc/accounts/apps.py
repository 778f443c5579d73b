from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "account_svc.accounts"
    label = "accounts"
