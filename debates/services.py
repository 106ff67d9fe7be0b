"""Debate business logic: every write to debates goes through here."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from debates.models import DEFAULT_TURNS, Debate
from debates.validators import normalise_asset


@transaction.atomic
def debate_create(
    *, asset: str, max_turns: int = DEFAULT_TURNS, created_by: AbstractBaseUser | None
) -> Debate:
    """Create a pending debate after validating its fields."""
    debate = Debate(asset=normalise_asset(asset), max_turns=max_turns, created_by=created_by)
    debate.full_clean(exclude=["created_by"])
    debate.save()
    return debate
