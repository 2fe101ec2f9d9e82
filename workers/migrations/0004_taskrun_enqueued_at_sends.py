# The run sweeper's bookkeeping: when the broker last took a message for a run, and how many.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('workers', '0003_model_version_workspace'),
    ]

    operations = [
        migrations.AddField(
            model_name='taskrun',
            name='enqueued_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='taskrun',
            name='sends',
            field=models.PositiveIntegerField(default=0),
        ),
    ]
