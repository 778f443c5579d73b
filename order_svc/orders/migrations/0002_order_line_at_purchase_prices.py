# Order lines record the unit price and the product's name the customer was shown:
# both travel with the saga (PurchaseCreated), so the order service no longer looks them
# up. The name may be empty (an event from before names travelled); its database default
# also lets a process of the previous code insert lines while a deploy rolls.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="orderline",
            name="name",
            field=models.CharField(
                blank=True,
                db_default="",
                help_text="the product's name the customer was shown",
                max_length=200,
            ),
        ),
        migrations.AlterField(
            model_name="orderline",
            name="unit_price",
            field=models.BigIntegerField(help_text="the price the purchase was made at"),
        ),
    ]
