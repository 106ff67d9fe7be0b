"""static/js/protocol.js: generated from streaming/protocol.py, and never stale."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from streaming import protocol
from streaming.protocol_js import default_path, render


def test_committed_protocol_js_is_current():
    # Fails after a change to protocol.py until `python manage.py protocol_js` is run again.
    call_command("protocol_js", "--check")
    assert default_path().read_text(encoding="utf-8") == render()


def test_check_refuses_a_stale_or_missing_file(tmp_path):
    target = tmp_path / "protocol.js"
    with pytest.raises(CommandError, match="stale"):
        call_command("protocol_js", "--check", output=str(target))
    assert not target.exists()
    target.write_text(render().replace("4008", "4009"), encoding="utf-8")
    with pytest.raises(CommandError, match="stale"):
        call_command("protocol_js", "--check", output=str(target))


def test_writes_the_file_that_check_then_accepts(tmp_path):
    target = tmp_path / "protocol.js"
    target.write_text("// old\n", encoding="utf-8")
    call_command("protocol_js", output=str(target))
    assert target.read_text(encoding="utf-8") == render()
    call_command("protocol_js", "--check", output=str(target))


def test_rendered_module_names_every_close_code_and_type():
    text = render()
    assert text.startswith(
        "// Generated from streaming/protocol.py by `python manage.py protocol_js`"
    )
    for member in protocol.Close:
        assert f"\n  {member.name}: {int(member)},\n" in text
    for action_type in {*protocol.SERVER_TYPES, *protocol.CLIENT_TYPES}:
        name = action_type.removeprefix("DEBATE/")
        assert f'\n  {name}: "{action_type}",\n' in text
