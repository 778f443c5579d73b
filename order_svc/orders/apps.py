from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "order_svc.orders"
    label = "orders"
