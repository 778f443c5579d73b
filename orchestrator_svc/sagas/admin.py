"""Admin for sagas: find them by state, age and why they ended, read their step log,
and the operator actions (resume a stalled saga; compensate again one that needs
attention; cancel one still going forward);
and the consistency audit's findings (audit.py), on their own list and on each saga.

Everything is read-only here: a saga changes only through services, so the actions
call the same functions the management commands do.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from common.errors import ApplicationError
from orchestrator_svc.sagas import selectors, services
from orchestrator_svc.sagas.models import ACTIVE_STATES, AuditFinding, Saga, SagaStepLog


class AgeFilter(admin.SimpleListFilter):
    """How long ago the saga started; with state "in flight" this finds the stuck ones."""

    title = "age"
    parameter_name = "age"
    _AGES = {
        "1m": ("older than a minute", timedelta(minutes=1)),
        "10m": ("older than 10 minutes", timedelta(minutes=10)),
        "1h": ("older than an hour", timedelta(hours=1)),
        "1d": ("older than a day", timedelta(days=1)),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in self._AGES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Saga]) -> QuerySet[Saga]:
        age = self._AGES.get(self.value() or "")
        if age is None:
            return queryset
        return queryset.filter(created_at__lt=timezone.now() - age[1])


class InFlightFilter(admin.SimpleListFilter):
    title = "in flight"
    parameter_name = "in_flight"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "in flight"), ("no", "ended")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Saga]) -> QuerySet[Saga]:
        if self.value() == "yes":
            return queryset.filter(state__in=ACTIVE_STATES)
        if self.value() == "no":
            return queryset.exclude(state__in=ACTIVE_STATES)
        return queryset


class SagaStepLogInline(admin.TabularInline):
    model = SagaStepLog
    fields = ("created_at", "step", "status", "attempt", "duration_ms", "sequence", "error")
    readonly_fields = fields
    ordering = ("id",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditFindingInline(admin.TabularInline):
    model = AuditFinding
    fields = ("kind", "detail", "repaired_at", "times_seen", "first_seen_at", "last_seen_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditFinding)
class AuditFindingAdmin(admin.ModelAdmin):
    """What the audit found, newest first; read-only (the audit writes, a person reads)."""

    list_display = (
        "saga",
        "kind",
        "saga_state",
        "detail",
        "repaired_at",
        "times_seen",
        "first_seen_at",
        "last_seen_at",
    )
    list_filter = ("kind", "saga_state", ("repaired_at", admin.EmptyFieldListFilter))
    search_fields = ("saga__purchase_id__exact",)
    search_help_text = "A purchase id."
    ordering = ("-first_seen_at",)
    readonly_fields = (
        "saga",
        "kind",
        "saga_state",
        "detail",
        "evidence",
        "repaired_at",
        "times_seen",
        "first_seen_at",
        "last_seen_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Saga)
class SagaAdmin(admin.ModelAdmin):
    list_display = (
        "purchase_id",
        "customer_id",
        "state",
        "current_step",
        "phase",
        "attempt",
        "age",
        "updated_at",
        "stop_reason",
        "short_error",
    )
    list_filter = (
        "state",
        InFlightFilter,
        AgeFilter,
        "phase",
        "stop_reason",
        ("cancel_requested_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("purchase_id__exact", "customer_id__exact")
    search_help_text = "A purchase id or a customer id."
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    readonly_fields = (
        "purchase_id",
        "customer_id",
        "state",
        "current_step",
        "phase",
        "attempt",
        "call_started_at",
        "sequence",
        "lease_owner",
        "lease_until",
        "next_run_at",
        "last_error",
        "deadline_at",
        "cancel_requested_at",
        "cancel_requested_by",
        "stop_reason",
        "payload",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields
    inlines = (AuditFindingInline, SagaStepLogInline)
    actions = ("resume", "compensate", "cancel")

    @admin.display(description="step")
    def current_step(self, saga: Saga) -> str:
        return selectors.saga_current_step(saga)

    @admin.display(description="age", ordering="created_at")
    def age(self, saga: Saga) -> str:
        seconds = int((timezone.now() - saga.created_at).total_seconds())
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds >= size:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"

    @admin.display(description="last error")
    def short_error(self, saga: Saga) -> str:
        return saga.last_error[:80]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # Actions change sagas: superusers only; staff may view (docs/adr/0019).
    @admin.action(
        description="Resume: hand the selected stalled sagas to a worker now",
        permissions=["change"],
    )
    def resume(self, request: HttpRequest, queryset: QuerySet[Saga]) -> None:
        self._run(request, queryset, services.saga_resume, "resumed")

    @admin.action(
        description="Compensate: retry the failed compensation of sagas that need attention",
        permissions=["change"],
    )
    def compensate(self, request: HttpRequest, queryset: QuerySet[Saga]) -> None:
        self._run(request, queryset, services.saga_compensation_retry, "compensation resumed")

    @admin.action(
        description="Cancel: stop the selected sagas going forward and undo their steps",
        permissions=["change"],
    )
    def cancel(self, request: HttpRequest, queryset: QuerySet[Saga]) -> None:
        self._run(request, queryset, services.saga_cancel, "cancel requested")

    def _run(self, request: HttpRequest, queryset: QuerySet[Saga], action: Any, done: str) -> None:
        succeeded, refused = 0, []
        for saga in queryset:
            try:
                action(purchase_id=str(saga.purchase_id))
            except ApplicationError as error:
                refused.append(f"{saga.purchase_id}: {error.message}")
                continue
            self.log_change(request, saga, done)
            succeeded += 1
        if succeeded:
            self.message_user(request, f"{succeeded} saga(s) {done}.", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)
