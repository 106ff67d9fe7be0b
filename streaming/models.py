"""Streaming models: who watches now, and the archived event logs of finished debates."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Viewer(models.Model):
    """One WebSocket connection watching a debate (written only by streaming.services)."""

    debate = models.ForeignKey("debates.Debate", on_delete=models.CASCADE, related_name="viewers")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="viewers",
    )
    # The server process holding the socket (tradeapp.instance.process_id): operator commands
    # reach the socket through that process's control channel, and the stale-viewer sweep closes
    # the rows of processes that stopped refreshing their liveness key.
    process = models.CharField(max_length=64, blank=True, default="")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    # The share link a socket without an account came with: revoking it closes the socket.
    share_link = models.ForeignKey(
        "debates.ShareLink",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="viewers",
    )
    connected_at = models.DateTimeField(default=timezone.now)
    disconnected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-connected_at"]
        indexes = [
            models.Index(fields=["debate", "disconnected_at"], name="viewer_debate_live_idx"),
            models.Index(fields=["-connected_at"], name="viewer_connected_idx"),
            # The stale-viewer sweep reads open rows only, however long the history grows.
            models.Index(
                fields=["connected_at"],
                condition=models.Q(disconnected_at__isnull=True),
                name="viewer_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"viewer {self.pk} of {self.debate_id}"

    @property
    def is_live(self) -> bool:
        """True while the socket is open."""
        return self.disconnected_at is None


class DebateEventArchive(models.Model):
    """The complete event log of a finished debate, kept after the live log's TTL.

    ``events`` is zlib-compressed UTF-8: the event texts in seq order joined by newlines (the
    JSON texts never contain a raw newline), so line n is the event with seq n. ``synthesised``
    marks an archive rebuilt from the saved arguments (the live log was incomplete): its seqs
    are its own, so a client resuming with a live lastSeq must start over.
    """

    debate = models.OneToOneField(
        "debates.Debate",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="event_archive",
    )
    last_seq = models.PositiveIntegerField()
    events = models.BinaryField()
    synthesised = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"events of {self.debate_id} (1..{self.last_seq})"
