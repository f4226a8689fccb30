"""The stories of the archive: one per article with a story key, listed newest first, found by key or words."""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.errors import UnknownStoryError
from bot.indexing.corpus import story_keys
from bot.indexing.terms import content_words, stem

CLOSEST_KEYS = 3  # keys offered when a key is unknown


@dataclass(frozen=True)
class Story:
    """An article as a reader picks it: its key (for links and --story), headline, outlet and date."""

    key: str
    title: str
    outlet: str | None
    date: str | None  # the header's date line as written
    doc: str  # the corpus file's name


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_DAY_MONTH_YEAR = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?[-\s/.]+([A-Za-z]{3,9})\.?[-\s/.,]+(\d{4})\b")
_MONTH_DAY_YEAR = re.compile(r"\b([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b")


def parse_date(text: str | None) -> datetime.date | None:
    """The calendar date a header's date line gives ("Updated 09:01, 15-Dec-2021", "3 March 2025"), or None."""
    if not text:
        return None
    candidates: list[tuple[str, str, str]] = []
    if match := _ISO_DATE.search(text):
        candidates.append((match.group(1), match.group(2), match.group(3)))
    if match := _DAY_MONTH_YEAR.search(text):
        candidates.append((match.group(3), match.group(2), match.group(1)))
    if match := _MONTH_DAY_YEAR.search(text):
        candidates.append((match.group(3), match.group(1), match.group(2)))
    for year, month, day in candidates:
        number = int(month) if month.isdigit() else _MONTHS.get(month.lower())
        if number is None:
            continue
        try:
            return datetime.date(int(year), number, int(day))
        except ValueError:
            continue
    return None


def _newest_first(story: Story) -> tuple[int, int, str, str]:
    date = parse_date(story.date)
    # Stories without a readable date go last, by title.
    return (0, -date.toordinal(), story.title.lower(), story.key) if date else (1, 0, story.title.lower(), story.key)


def _search_stems(text: str) -> set[str]:
    return {stem(word) for word in content_words(text.replace("-", " ").replace("_", " "))}


class StoryCatalogue:
    """Every keyed story of one index, newest first; built once per index."""

    def __init__(self, headers: Iterable[tuple[str, str, str | None, str | None]]) -> None:
        rows = list(headers)
        keys, self.problems = story_keys(name for name, *_ in rows)
        stories = [Story(keys[name], title, outlet, date, name) for name, title, outlet, date in rows if name in keys]
        self.stories = sorted(stories, key=_newest_first)
        self._by_key = {story.key: story for story in self.stories}
        self._by_doc = {story.doc: story for story in self.stories}
        self._words = {story.key: _search_stems(f"{story.title} {story.outlet or ''} {story.key}") for story in stories}

    def get(self, key: str) -> Story:
        """The story with this key; UnknownStoryError with the closest keys when there is none."""
        story = self._by_key.get(key)
        if story is None:
            raise UnknownStoryError(key, self.closest(key))
        return story

    def of_document(self, doc: str) -> Story | None:
        """The story of a corpus file, when it has a key."""
        return self._by_doc.get(doc)

    def closest(self, key: str, limit: int = CLOSEST_KEYS) -> list[str]:
        """Keys most like `key`, compared with each story's key and its headline (difflib), best first."""
        wanted = key.strip().lower()
        if not wanted:
            return []
        matcher = difflib.SequenceMatcher(b=wanted)
        best: list[tuple[float, int, str]] = []  # (similarity, position, key): the best `limit` so far
        for position, story in enumerate(self.stories):
            floor = best[-1][0] if len(best) == limit else 0.0
            similarity = 0.0
            for text in (story.key.lower(), story.title.lower()):
                matcher.set_seq1(text)
                # quick_ratio bounds ratio from above: most of a large archive is passed over without the full match.
                if matcher.quick_ratio() > max(floor, similarity):
                    similarity = max(similarity, matcher.ratio())
            if similarity > floor:
                best = sorted([*best, (similarity, position, story.key)], key=lambda b: (-b[0], b[1]))[:limit]
        return [item[2] for item in best]

    def search(self, words: str) -> list[Story]:
        """Stories whose headline, outlet or key hold the words; those holding all of them, else the most, first."""
        wanted = _search_stems(words)
        if not wanted:
            return []
        matches = [(len(wanted & self._words[story.key]), story) for story in self.stories]
        # Newest first among equals: self.stories is in that order and sorting is stable.
        return [story for count, story in sorted(matches, key=lambda item: -item[0]) if count > 0]
