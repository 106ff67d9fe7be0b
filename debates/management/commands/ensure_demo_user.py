"""Create (or reset) the demo login and print its credentials."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

# 24 random bytes: 192 bits, beyond any guessing.
GENERATED_PASSWORD_BYTES = 24


class Command(BaseCommand):
    """manage.py ensure_demo_user [--username NAME] [--password PASSWORD]."""

    help = "Create or reset a staff demo user and print its username and password."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=settings.DEMO_USERNAME)
        parser.add_argument(
            "--password",
            default="",
            help="Checked by the password validators; defaults to a new random one each run.",
        )

    @transaction.atomic
    def handle(self, *args, username: str, password: str, **options) -> None:
        password = password or secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        user, created = get_user_model().objects.get_or_create(username=username)
        try:
            validate_password(password, user)
        except ValidationError as exc:
            # Rolls back a user created just now: no login with a weak password.
            raise CommandError("Password refused: " + " ".join(exc.messages)) from None
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        verb = "Created" if created else "Reset"
        self.stdout.write(
            self.style.SUCCESS(f"{verb} demo login  username: {username}  password: {password}")
        )
