"""Admin of purchases: read-only. A purchase changes only through its saga's events."""

from __future__ import annotations

import uuid

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import ReadOnlyAdminMixin
from purchase_svc.purchases.models import Purchase, PurchaseStepEvent


class PurchaseStepEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PurchaseStepEvent
    fields = (
        "sequence",
        "step",
        "status",
        "purchase_status",
        "attempt",
        "error",
        "received_at",
        "message_id",
    )
    readonly_fields = fields
    ordering = ("sequence", "id")
    extra = 0
    can_delete = False
    show_change_link = False


def _search_terms(search_term: str) -> tuple[list[uuid.UUID], list[int]]:
    """The purchase ids and customer ids a search box entry can mean."""
    ids: list[uuid.UUID] = []
    customers: list[int] = []
    for term in search_term.split():
        try:
            ids.append(uuid.UUID(term))
        except ValueError:
            if term.isdigit() and len(term) < 19:
                customers.append(int(term))
    return ids, customers


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "reason",
        "customer_id",
        "amount",
        "currency_code",
        "created_at",
    )
    # cancel_requested_at: empty or not, i.e. whether the customer asked to cancel (a
    # purchase asked may still have completed: the saga was faster).
    list_filter = (
        "status",
        "reason",
        ("cancel_requested_at", admin.EmptyFieldListFilter),
        "currency_code",
        "created_at",
    )
    search_fields = ("id", "customer_id")
    search_help_text = "A purchase id (UUID) or a customer id."
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    readonly_fields = (
        "id",
        "customer_id",
        "status",
        "reason",
        "cancel_requested_at",
        "amount",
        "currency_code",
        "items",
        "last_sequence",
        "idempotency_key",
        "request_fingerprint",
        "response_status",
        "response_body",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields
    inlines = [PurchaseStepEventInline]
    show_full_result_count = False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Purchase], search_term: str
    ) -> tuple[QuerySet[Purchase], bool]:
        # Exact matches only: a UUID is a purchase id, a number a customer id; anything
        # else finds nothing (never a LIKE scan over a uuid column cast to text).
        if not search_term.strip():
            return queryset, False
        ids, customers = _search_terms(search_term)
        return queryset.filter(id__in=ids) | queryset.filter(customer_id__in=customers), False


@admin.register(PurchaseStepEvent)
class PurchaseStepEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "purchase_id",
        "sequence",
        "step",
        "status",
        "purchase_status",
        "received_at",
    )
    list_filter = ("step", "status", "purchase_status")
    search_fields = ("purchase_id",)
    search_help_text = "A purchase id (UUID)."
    readonly_fields = (
        "message_id",
        "purchase_id",
        "step",
        "status",
        "purchase_status",
        "sequence",
        "attempt",
        "error",
        "received_at",
    )
    fields = readonly_fields
    show_full_result_count = False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[PurchaseStepEvent], search_term: str
    ) -> tuple[QuerySet[PurchaseStepEvent], bool]:
        if not search_term.strip():
            return queryset, False
        ids, _ = _search_terms(search_term)
        return queryset.filter(purchase_id__in=ids), False
