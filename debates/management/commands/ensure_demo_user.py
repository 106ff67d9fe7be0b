"""Create (or reset) the demo login and print its credentials."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    """manage.py ensure_demo_user [--username NAME] [--password PASSWORD]."""

    help = "Create or reset a staff demo user and print its username and password."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=settings.DEMO_USERNAME)
        parser.add_argument(
            "--password", default="", help="Defaults to a new random password each run."
        )

    def handle(self, *args, username: str, password: str, **options) -> None:
        password = password or secrets.token_urlsafe(9)
        user, created = get_user_model().objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        verb = "Created" if created else "Reset"
        self.stdout.write(
            self.style.SUCCESS(f"{verb} demo login  username: {username}  password: {password}")
        )
