"""Admin for the catalog. Product changes go through the same cache upkeep as the API;
reservations are the saga's record and read-only here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import ReadOnlyAdminMixin
from product_svc.catalog import services
from product_svc.catalog.models import Category, Product, Reservation, ReservationLine


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "description", "updated_at")
    search_fields = ("name", "description")
    ordering = ("id",)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "brand_name", "category", "price", "inventory", "updated_at")
    list_filter = ("category",)
    list_select_related = ("category",)
    search_fields = ("=id", "name", "brand_name", "description", "category__name")
    ordering = ("id",)
    readonly_fields = ("created_at", "updated_at")

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            services.product_filter_add(product_id=obj.id)
        services.product_cache_invalidate_on_commit(product_ids=[obj.id])

    def delete_model(self, request: HttpRequest, obj: Product) -> None:
        product_id = obj.id
        super().delete_model(request, obj)
        services.product_cache_invalidate_on_commit(product_ids=[product_id])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        super().delete_queryset(request, queryset)
        services.product_cache_invalidate_on_commit(product_ids=ids)


class ReservationLineInline(admin.TabularInline):
    model = ReservationLine
    fields = ("product", "quantity")
    readonly_fields = ("product", "quantity")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("purchase_id", "state", "created_at", "updated_at")
    list_filter = ("state",)
    search_fields = ("purchase_id__iexact", "lines__product__name")
    readonly_fields = ("purchase_id", "state", "created_at", "updated_at")
    inlines = (ReservationLineInline,)
    ordering = ("-created_at",)
