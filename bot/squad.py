"""SQuAD JSON (1.1 and 2.0): articles as storybot documents, questions as eval cases, and the fixed split by article.

Read by `storybot eval` and `storybot train-reader` alike. The split is by article, never by question, so
that dev and test articles are unseen in training. It was fixed before any tuning (see SQUAD_SPLIT) and
is the same for training, scoring fits and reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bot.errors import StorybotError

# Fixed before tuning. The sample's unanswerable questions sit in two articles only (Zelda, Spectre):
# one goes to training, one to test. The other eight were dealt by random.Random(2026).shuffle of their
# titles: the first to test, the next two to dev, the rest to train.
SQUAD_SPLIT: dict[str, str] = {
    "The_Legend_of_Zelda:_Twilight_Princess": "train",
    "Spectre_(2015_film)": "test",
    "To_Kill_a_Mockingbird": "test",
    "Solar_energy": "dev",
    "IPod": "dev",
    "Beyoncé": "train",
    "New_York_City": "train",
    "2008_Sichuan_earthquake": "train",
    "Sino-Tibetan_relations_during_the_Ming_dynasty": "train",
    "Frédéric_Chopin": "train",
    # The SQuAD 2.0 dev set less two articles (../shared/data/squad2-dev, 33 articles, 5,625 unanswerable
    # questions), split when it arrived, before any training on it: random.Random(2026).shuffle of the
    # sorted titles; the first seven to test (1,061 unanswerable questions, so that the test split holds
    # over 1,000 with Spectre's), the next five to dev (1,031), the other 21 to train (3,533).
    **dict.fromkeys(
        (
            "European_Union_law",
            "Ctenophora",
            "Fresno,_California",
            "Sky_(United_Kingdom)",
            "French_and_Indian_War",
            "Black_Death",
            "Construction",
        ),
        "test",
    ),
    **dict.fromkeys(
        (
            "Prime_number",
            "Steam_engine",
            "University_of_Chicago",
            "Geology",
            "Computational_complexity_theory",
        ),
        "dev",
    ),
    **dict.fromkeys(
        (
            "Packet_switching",
            "Amazon_rainforest",
            "Force",
            "1973_oil_crisis",
            "Scottish_Parliament",
            "Huguenot",
            "Immune_system",
            "Pharmacy",
            "Islamism",
            "Harvard_University",
            "Intergovernmental_Panel_on_Climate_Change",
            "Private_school",
            "Jacksonville,_Florida",
            "Yuan_dynasty",
            "Civil_disobedience",
            "Southern_California",
            "Warsaw",
            "Victoria_(Australia)",
            "Imperialism",
            "Oxygen",
            "Economic_inequality",
        ),
        "train",
    ),
}


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]  # empty: unanswerable
    answer_starts: tuple[int, ...]  # offsets of the answers in their paragraph
    paragraph: int  # index of the paragraph in its article


@dataclass(frozen=True)
class SquadArticle:
    title: str
    paragraphs: tuple[str, ...]
    questions: tuple[SquadQuestion, ...]

    @property
    def file_name(self) -> str:
        safe = "".join(ch if ch.isalnum() else "-" for ch in self.title).strip("-").lower()
        return f"squad-{safe}.txt"

    def document_text(self) -> str:
        """The article as a corpus file: the title, a blank line, then the paragraphs separated by blank lines."""
        return self.title.replace("_", " ") + "\n\n" + "\n\n".join(" ".join(p.split()) for p in self.paragraphs) + "\n"


def load_squad(path: Path) -> list[SquadArticle]:
    """Every article of a SQuAD JSON file (1.1: every question answerable; 2.0: `is_impossible` ones not)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        articles = []
        for article in data["data"]:
            paragraphs, questions = [], []
            for number, paragraph in enumerate(article["paragraphs"]):
                paragraphs.append(paragraph["context"])
                for qa in paragraph["qas"]:
                    answers = [] if qa.get("is_impossible") else qa["answers"]
                    questions.append(
                        SquadQuestion(
                            id=str(qa["id"]),
                            question=str(qa["question"]),
                            answers=tuple(str(a["text"]) for a in answers),
                            answer_starts=tuple(int(a["answer_start"]) for a in answers),
                            paragraph=number,
                        )
                    )
            articles.append(SquadArticle(str(article["title"]), tuple(paragraphs), tuple(questions)))
        return articles
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise StorybotError(f"{path} is not SQuAD JSON ({type(error).__name__}: {error})") from None


def is_squad_file(path: Path) -> bool:
    """True for a .json file (SQuAD); JSON Lines files are our own question format."""
    return path.suffix.lower() == ".json"


def split_of(title: str) -> str:
    """train / dev / test of an article; to `storybot eval`, an article SQUAD_SPLIT does not name is test
    (an outside question set is unseen)."""
    return SQUAD_SPLIT.get(title, "test")


def trainable(title: str) -> bool:
    """May `storybot train-reader` train on this article? Every article of a file it is given, except the
    dev and test articles: the SQuAD 1.1 training set holds the sample's dev and test articles too."""
    return SQUAD_SPLIT.get(title, "train") == "train"
