"""Admin of payments, for the people who run the shop: find a payment, read it.

Payments are the saga's record: the orchestrator takes and refunds them by purchase
id, and a hand-made, changed or deleted payment would disagree with the purchase and
its order. So the admin only reads: no add, no change, no delete.
"""

from __future__ import annotations

from django.contrib import admin

from common.admin import ReadOnlyAdminMixin
from payment_svc.payments.models import Payment


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "status", "customer_id", "amount", "currency_code", "created_at")
    list_filter = ("status", "currency_code", "created_at", "updated_at")
    date_hierarchy = "created_at"
    # An id or a part of one; a customer id exactly.
    search_fields = ("id", "customer_id__exact")
    search_help_text = "Payment (purchase) id or a part of it, or a customer id."
    fields = ("id", "status", "customer_id", "amount", "currency_code", "created_at", "updated_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False
