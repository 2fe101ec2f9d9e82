"""The sending domains' DKIM private keys stored sealed (marketing_ai.sealed), as the sending
settings' secrets are: those stored in clear before are sealed now (and opened again going back)."""

from django.db import migrations

from marketing_ai import sealed

PEM = "-----BEGIN"


def seal_keys(apps, schema_editor) -> None:
    SendingDomain = apps.get_model("campaigns", "SendingDomain")
    for row in SendingDomain.objects.filter(private_key__startswith=PEM):
        row.private_key = sealed.seal(row.private_key)
        row.save(update_fields=["private_key"])


def open_keys(apps, schema_editor) -> None:
    SendingDomain = apps.get_model("campaigns", "SendingDomain")
    for row in SendingDomain.objects.exclude(private_key__startswith=PEM).exclude(private_key=""):
        row.private_key = sealed.unseal(row.private_key)
        row.save(update_fields=["private_key"])


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0018_feedback_policy")]

    operations = [migrations.RunPython(seal_keys, open_keys)]
