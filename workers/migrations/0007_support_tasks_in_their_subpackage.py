# Support chat's tasks moved with the rest of support chat into crm/support/.

from django.db import migrations

from workers.migration_ops import rename_stored_tasks

RENAMED = {
    "crm.tasks.chat.chat_reply": "crm.support.tasks.chat_reply",
    "crm.tasks.chat.sweep": "crm.support.tasks.sweep",
}


class Migration(migrations.Migration):
    dependencies = [("workers", "0006_task_names_follow_their_apps")]

    operations = [rename_stored_tasks(RENAMED)]
