"""The API's JSON parser: camelCase in, and nesting bounded before anything recurses into it."""

import json
import re

from django.conf import settings
from djangorestframework_camel_case.parser import CamelCaseJSONParser
from djangorestframework_camel_case.util import underscoreize
from rest_framework.exceptions import ParseError

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deeply the JSON text nests arrays and objects (brackets inside strings ignored)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class BoundedCamelCaseJSONParser(CamelCaseJSONParser):
    """CamelCaseJSONParser that answers 400 to JSON nested deeper than API_MAX_JSON_DEPTH
    (the parser and the key conversion recurse, and ~1,000 levels raised RecursionError)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        limit = int(settings.API_MAX_JSON_DEPTH)
        if json_depth(text) > limit:
            raise ParseError(f"JSON parse error - nested deeper than {limit} levels.")
        try:
            return underscoreize(json.loads(text), **self.json_underscoreize)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
