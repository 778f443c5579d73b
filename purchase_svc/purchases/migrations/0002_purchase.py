import uuid

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("purchases", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Purchase",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("customer_id", models.BigIntegerField()),
                ("items", models.JSONField()),
                ("amount", models.BigIntegerField()),
                ("currency_code", models.CharField(max_length=3)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("PENDING", "Pending"),
                            ("COMPLETED", "Completed"),
                            ("FAILED", "Failed"),
                            ("NEEDS_ATTENTION", "Needs attention"),
                        ],
                        default="PENDING",
                        max_length=20,
                    ),
                ),
                ("last_sequence", models.IntegerField(default=0)),
                ("idempotency_key", models.CharField(blank=True, max_length=128, null=True)),
                ("request_fingerprint", models.CharField(blank=True, default="", max_length=64)),
                ("response_status", models.PositiveSmallIntegerField()),
                ("response_body", models.JSONField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "db_table": "purchase",
                "indexes": [
                    models.Index(fields=["customer_id", "-created_at"], name="purchase_customer_newest"),
                    models.Index(fields=["status", "-created_at"], name="purchase_status_newest"),
                    models.Index(fields=["-created_at"], name="purchase_newest"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("idempotency_key__isnull", False)),
                        fields=("customer_id", "idempotency_key"),
                        name="purchase_idempotency_key_unique",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("amount__gte", 0)), name="purchase_amount_not_negative"
                    ),
                ],
            },
        ),
        # The step's plain `purchase_id` column becomes a foreign key without a database
        # constraint, on the same column: only the state changes, plus the index.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterField(
                    model_name="purchasestepevent",
                    name="purchase_id",
                    field=models.UUIDField(),
                ),
            ],
            state_operations=[
                migrations.RemoveField(model_name="purchasestepevent", name="purchase_id"),
                migrations.AddField(
                    model_name="purchasestepevent",
                    name="purchase",
                    field=models.ForeignKey(
                        db_column="purchase_id",
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="steps",
                        to="purchases.purchase",
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="purchasestepevent",
            name="purchase_status",
            field=models.CharField(blank=True, default="", max_length=20),
        ),
        migrations.AddField(
            model_name="purchasestepevent",
            name="sequence",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="purchasestepevent",
            name="attempt",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddIndex(
            model_name="purchasestepevent",
            index=models.Index(fields=["purchase", "id"], name="purchase_step_event_order"),
        ),
    ]
