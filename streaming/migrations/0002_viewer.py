"""Viewer, moved here from debates with its rows; the archive marks synthesised logs."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    """Keep the admin permissions and log entries of viewers: their content type moves too."""
    content_type = apps.get_model("contenttypes", "ContentType")
    if not content_type.objects.filter(app_label="streaming", model="viewer").exists():
        content_type.objects.filter(app_label="debates", model="viewer").update(
            app_label="streaming"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("debates", "0003_move_viewer_to_streaming"),
        ("streaming", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Viewer",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("channel_name", models.CharField(max_length=255)),
                        ("process", models.CharField(blank=True, default="", max_length=64)),
                        ("client_ip", models.GenericIPAddressField(blank=True, null=True)),
                        (
                            "connected_at",
                            models.DateTimeField(default=django.utils.timezone.now),
                        ),
                        ("disconnected_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "debate",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="viewers",
                                to="debates.debate",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="viewers",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["-connected_at"],
                        "db_table": "debates_viewer",
                        "indexes": [
                            models.Index(
                                fields=["debate", "disconnected_at"],
                                name="viewer_debate_live_idx",
                            ),
                            models.Index(fields=["-connected_at"], name="viewer_connected_idx"),
                            models.Index(
                                condition=models.Q(("disconnected_at__isnull", True)),
                                fields=["connected_at"],
                                name="viewer_open_idx",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="viewer", table=None),
        # Operator commands now reach a socket through its process, not a channel per socket.
        migrations.RemoveField(model_name="viewer", name="channel_name"),
        migrations.AddField(
            model_name="debateeventarchive",
            name="synthesised",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(move_content_type, migrations.RunPython.noop),
    ]
