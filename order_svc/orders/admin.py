"""Admin of orders, for the people who run the shop: find an order, read it.

Orders are the saga's record: the orchestrator creates and cancels them by purchase
id, and a hand-made, changed or deleted order would disagree with the purchase, the
payment and the reserved stock. So the admin only reads: no add, no change, no delete.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from common.admin import ReadOnlyAdminMixin
from order_svc.orders.models import Order, OrderLine


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ("product_id", "name", "unit_price", "quantity", "line_total")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "status", "customer_id", "amount", "line_count", "created_at")
    list_filter = ("status", "created_at", "updated_at")
    date_hierarchy = "created_at"
    # An id or a part of one; a customer id exactly; a product by name.
    search_fields = ("id", "customer_id__exact", "lines__name")
    search_help_text = "Order id (or part of it), customer id, or a product name."
    fields = ("id", "status", "customer_id", "amount", "created_at", "updated_at")
    readonly_fields = fields
    inlines = (OrderLineInline,)
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        # A subquery, not a join: the search on line names joins the lines already.
        lines = (
            OrderLine.objects.filter(order=OuterRef("pk"))
            .order_by()
            .values("order")
            .annotate(n=Count("*"))
            .values("n")
        )
        count = Coalesce(Subquery(lines, output_field=IntegerField()), 0)
        return super().get_queryset(request).annotate(_line_count=count)

    @admin.display(description="lines", ordering="_line_count")
    def line_count(self, obj: Order) -> int:
        return int(getattr(obj, "_line_count", 0))
