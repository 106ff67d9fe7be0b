"""Version-guarded patches: each one declares the exact versions it was written and tested for."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata

Undo = Callable[[], None]
VersionOf = Callable[[str], str | None]

_MISSING = object()


@dataclass(frozen=True)
class Patch:
    """One patch of a server library: applied only on the versions in `requires`."""

    name: str
    requires: Mapping[str, str]  # distribution name -> the exact version it was written for
    apply: Callable[[], Undo]  # applies the patch; returns what restores the originals
    without: str  # what the project loses while the patch is off


def installed_version(distribution: str) -> str | None:
    """The installed version of `distribution`, or None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def mismatches(patch: Patch, version_of: VersionOf) -> dict[str, str | None]:
    """The distributions whose installed version is not the one `patch` was written for."""
    found = {name: version_of(name) for name in patch.requires}
    return {name: got for name, got in found.items() if got != patch.requires[name]}


def replace(owner, name: str, value) -> Undo:
    """Set ``owner.name`` (a class or module attribute) and return what restores it exactly,
    deleting it again when `owner` only inherited it."""
    original = vars(owner).get(name, _MISSING)
    setattr(owner, name, value)

    def undo() -> None:
        if original is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, original)

    return undo


def undo_all(undos: list[Undo]) -> Undo:
    """One undo running `undos` in reverse order."""

    def undo() -> None:
        for step in reversed(undos):
            step()

    return undo
