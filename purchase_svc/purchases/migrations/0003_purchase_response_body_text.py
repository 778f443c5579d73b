from django.db import migrations, models


class Migration(migrations.Migration):
    """The first answer is kept as the exact JSON text sent: jsonb reorders keys, and an
    idempotent replay must answer the same bytes."""

    dependencies = [
        ("purchases", "0002_purchase"),
    ]

    operations = [
        migrations.AlterField(
            model_name="purchase",
            name="response_body",
            field=models.TextField(),
        ),
    ]
