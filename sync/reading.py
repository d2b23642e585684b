"""What a lane reads of its catalogue entity: the `$select`, and the fields its records keep (TOPIC_FIELDS)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from exact import CATALOGUE, Entity
from runtime.settings import Settings

__all__ = ["InvalidTopicFields", "Reading", "reading_of", "topic_fields"]


class InvalidTopicFields(ValueError):
    """TOPIC_FIELDS names a topic or a field the catalogue does not have; the message names them."""


@dataclass(frozen=True)
class Reading:
    """One entity as a lane reads it: every field, or those TOPIC_FIELDS narrows it to (keys and versions kept)."""

    entity: Entity
    select: tuple[str, ...]
    header: tuple[str, ...]  # a record's fields (a document's header fields)
    lines: tuple[str, ...]  # each line's fields (documents only)

    @classmethod
    def of(cls, entity: Entity, narrow: Sequence[str] | None = None) -> Reading:
        header, lines = entity.record_fields(narrow)
        return cls(entity, tuple(entity.select(narrow)), tuple(header), tuple(lines))

    @property
    def topic(self) -> str:
        return self.entity.topic


def topic_fields(settings: Settings) -> dict[str, tuple[str, ...]]:
    """TOPIC_FIELDS by the catalogue's topic names; `InvalidTopicFields` for a topic or field it does not know."""
    try:
        given = settings.topic_field_lists
    except ValueError as exc:
        raise InvalidTopicFields(str(exc)) from exc
    return _checked(given)


def _checked(given: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for topic, names in given.items():
        entity = CATALOGUE.get(topic)
        if entity is None:
            raise InvalidTopicFields(
                f"TOPIC_FIELDS: unknown topic {topic!r}; supported: {', '.join(CATALOGUE.topics())}"
            )
        try:
            entity.check_narrow(names)
        except ValueError as exc:
            raise InvalidTopicFields(f"TOPIC_FIELDS: {exc}") from exc
        found[entity.topic] = tuple(names)
    return found


def reading_of(entity: Entity, settings: Settings) -> Reading:
    """The entity as this process reads it, after TOPIC_FIELDS, which always keeps `Modifier` where the topic has it:
    a push's `data.origin` names it."""
    narrow = topic_fields(settings).get(entity.topic)
    return Reading.of(entity, None if narrow is None else (*narrow, "Modifier"))
