"""OpenAPI post-processing: the error answers every operation can give, documented once."""

AUTH_FAILED = "Missing, invalid or expired credentials."
BAD_REQUEST = (
    "Invalid body or query: field errors, not JSON, or nested deeper than API_MAX_JSON_DEPTH."
)
NOT_FOUND = "No such object, or a page past the last one."
UNAVAILABLE = "The database or Redis is down for now (Retry-After): try again shortly."


def document_error_responses(result, generator, request, public):
    """Add 401 and 503 to every operation, 400 to those with a body or a query and 404 to those
    with a path parameter or a page, unless a view documented them already (drf-spectacular
    hook)."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            responses.setdefault("401", {"description": AUTH_FAILED})
            responses.setdefault("503", {"description": UNAVAILABLE})
            if "requestBody" in operation or any(p.get("in") == "query" for p in parameters):
                responses.setdefault("400", {"description": BAD_REQUEST})
            if any(p.get("in") == "path" or p.get("name") == "page" for p in parameters):
                responses.setdefault("404", {"description": NOT_FOUND})
    return result
