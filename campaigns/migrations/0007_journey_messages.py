# A journey's messages go through the send ledger too: a campaign of kind "journey" holds their
# copy, and each ledger row names the enrolment and the send step it is for.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0006_journeys"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="kind",
            field=models.CharField(
                choices=[
                    ("broadcast", "a broadcast: launched once to its audience"),
                    (
                        "journey",
                        "a journey's message: sent by its send steps, one enrolment at a time",
                    ),
                ],
                default="broadcast",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="enrolment_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="step",
            field=models.CharField(blank=True, max_length=40),
        ),
    ]
