from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payment_svc.payments"
    label = "payments"
