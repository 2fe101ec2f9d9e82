# One active recommender per workspace: the one-active constraint counts a slot (every
# recommend.* family together) instead of the exact family. Where two recommenders were active
# at once, the one promoted last stays active and the others are retired.

import django.db.models.functions.comparison
from django.db import migrations, models


def retire_all_but_the_latest_recommender(apps, schema_editor):
    ModelVersion = apps.get_model("workers", "ModelVersion")
    active = ModelVersion.objects.filter(family__startswith="recommend.", status="active")
    kept: set = set()
    for version in active.order_by(models.F("promoted_at").desc(nulls_last=True), "-pk"):
        if version.workspace_id in kept:
            ModelVersion.objects.filter(pk=version.pk).update(status="retired")
        kept.add(version.workspace_id)


class Migration(migrations.Migration):

    dependencies = [
        ('workers', '0004_taskrun_enqueued_at_sends'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='modelversion',
            name='modelversion_one_active_per_family',
        ),
        migrations.RunPython(retire_all_but_the_latest_recommender, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='modelversion',
            constraint=models.UniqueConstraint(django.db.models.functions.comparison.Coalesce('workspace', models.Value(0)), models.Case(models.When(family__startswith='recommend.', then=models.Value('recommend.')), default=models.F('family'), output_field=models.CharField()), condition=models.Q(('status', 'active')), name='modelversion_one_active_per_slot'),
        ),
    ]
