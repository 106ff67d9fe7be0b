"""Models of the streaming layer: the archived event log of finished debates."""

from django.db import models


class DebateEventArchive(models.Model):
    """The complete event log of a finished debate, kept after the live log's TTL.

    ``events`` is zlib-compressed UTF-8: the event texts in seq order joined by newlines (the
    JSON texts never contain a raw newline), so line n is the event with seq n.
    """

    debate = models.OneToOneField(
        "debates.Debate",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="event_archive",
    )
    last_seq = models.PositiveIntegerField()
    events = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"events of {self.debate_id} (1..{self.last_seq})"
