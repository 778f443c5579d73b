from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "product_svc.catalog"
    label = "catalog"
