from django.apps import AppConfig


class PurchasesConfig(AppConfig):
    name = "purchase_svc.purchases"
    label = "purchases"
