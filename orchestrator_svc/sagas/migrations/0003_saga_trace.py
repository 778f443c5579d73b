from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sagas", "0002_saga_state_machine")]

    operations = [
        migrations.AddField(
            model_name="saga",
            name="trace",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Trace context (W3C traceparent) of the message that started the "
                "saga: every later run of the saga continues that trace.",
            ),
        ),
    ]
