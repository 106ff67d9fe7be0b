"""Every environment variable the server reads is documented in .env.example, and vice versa."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_PACKAGES = ["tradeapp", "debates", "streaming"]
ENV_READERS = {"env_str", "env_bool", "env_int", "env_float", "env_list", "env_prices", "getenv"}
# Set by the process itself (manage.py, asgi.py), not read as configuration.
NOT_CONFIGURATION = {"DJANGO_SETTINGS_MODULE"}


def _name(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def variables_read(source: str) -> set[str]:
    """The constant names a module reads from the environment: env_*("X"), os.getenv("X"),
    os.environ.get("X"), os.environ["X"]."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            environ_get = called == "get" and _is_os_environ(getattr(func, "value", None))
            if (called in ENV_READERS or environ_get) and node.args:
                names.add(_name(node.args[0]))
        elif (
            isinstance(node, ast.Subscript)
            and _is_os_environ(node.value)
            and isinstance(node.ctx, ast.Load)
        ):
            names.add(_name(node.slice))
    return {name for name in names if name} - NOT_CONFIGURATION


def server_variables() -> set[str]:
    return {
        name
        for package in SERVER_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for name in variables_read(path.read_text())
    }


def documented_variables() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_the_scanner_sees_every_way_of_reading_the_environment():
    source = (
        "import os\n"
        "a = env_str('A')\nb = env_list('B', [])\nc = os.getenv('C')\n"
        "d = os.environ.get('D', '')\ne = os.environ['E']\nos.environ['F'] = '1'\n"
    )
    assert variables_read(source) == {"A", "B", "C", "D", "E"}


def test_every_variable_the_server_reads_is_in_env_example():
    read = server_variables()
    assert len(read) > 40  # the scan found the settings module's reads
    missing = sorted(read - documented_variables())
    assert missing == [], f"document these in .env.example: {missing}"


def test_env_example_lists_nothing_the_server_does_not_read():
    stale = sorted(documented_variables() - server_variables())
    assert stale == [], f"nothing reads these any more: {stale}"
