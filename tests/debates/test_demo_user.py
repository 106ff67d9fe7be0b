"""manage.py ensure_demo_user: a strong generated password, and weak ones refused."""

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("ensure_demo_user", *args, stdout=out)
    return out.getvalue()


def test_the_generated_password_is_long_random_and_works():
    out = run()
    password = re.search(r"password: (\S+)", out).group(1)
    assert len(password) >= 32  # 24 random bytes, base64url
    user = authenticate(username="demo", password=password)
    assert user is not None
    assert user.is_staff
    assert user.is_superuser
    again = re.search(r"password: (\S+)", run()).group(1)
    assert again != password


@pytest.mark.parametrize("weak", ["demo", "password1", "12345678901", "qwertyuiop"])
def test_a_weak_password_is_refused_and_no_login_is_made(weak):
    with pytest.raises(CommandError, match="Password refused"):
        run(f"--password={weak}")
    assert not get_user_model().objects.filter(username="demo").exists()


def test_a_weak_password_leaves_an_existing_login_unchanged():
    good = "a-long-and-unguessable-passphrase-42"
    run(f"--password={good}")
    with pytest.raises(CommandError):
        run("--password=short")
    assert authenticate(username="demo", password=good) is not None
