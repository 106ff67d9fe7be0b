"""Viewer moves to the streaming app, which alone writes it; the table and its rows are kept."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("debates", "0002_viewer_process"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Viewer")],
            database_operations=[],
        ),
    ]
