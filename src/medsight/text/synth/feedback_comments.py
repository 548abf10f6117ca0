"""Patient-feedback comments with a sentiment (positive / neutral / negative) and a topic.

Sentiments are balanced (a third each). Most comments say one thing about one topic; about
a third of the positive and negative ones are hard cases a bag of words gets wrong:

* negated words: "not bad at all" (positive), "the food was not great" (negative),
  "nobody was rude" (positive);
* mixed: "the nurses were lovely but the wait was awful". The label follows the clause after
  "but" (the one the writer ends on and means), and the topic is that clause's topic; with
  "although" the label follows the main clause ("although the wait was long, the nurses
  were lovely" is positive);
* sarcasm (negative): "Great, another four hour wait.";
* neutral comments are plain statements or requests without praise or complaint ("I was seen
  at 10 for a scan booked at 9:30", "please add more parking signs").
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from medsight.text.synth.document_builder import GeneratedNote

SENTIMENTS = ("positive", "neutral", "negative")
TOPICS = (
    "staff",
    "waiting time",
    "cleanliness",
    "food",
    "communication",
    "billing",
    "parking",
    "appointments",
)
#: topic -> (positive clauses, negative clauses, neutral statements)
_CLAUSES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "staff": (
        (
            "the nurses were lovely",
            "the staff were kind and professional",
            "the doctor on the ward was very caring",
            "the radiographer put me at ease",
        ),
        (
            "the nurse was rude to my mother",
            "staff seemed annoyed by my questions",
            "the receptionist was dismissive",
            "nobody introduced themselves",
        ),
        ("I saw two nurses and a doctor during my stay", "a student nurse took my blood pressure"),
    ),
    "waiting time": (
        ("I was seen right on time", "the wait was short", "they got me in quickly"),
        ("the wait was awful", "I waited four hours to be seen", "we sat in the corridor for ages"),
        ("I was seen at 10 for a scan booked at 9:30", "the wait was about forty minutes"),
    ),
    "cleanliness": (
        ("the ward was spotless", "the bathrooms were very clean", "everything looked clean"),
        ("the toilets were filthy", "there was dust everywhere", "the bed sheets were stained"),
        ("the room was cleaned once a day", "cleaning staff came in the mornings"),
    ),
    "food": (
        ("the food was tasty", "the meals were surprisingly good", "lunch was hot and fresh"),
        ("the food was cold", "the meals were inedible", "dinner arrived two hours late"),
        ("meals were served at 7, 12 and 5", "I had the vegetarian option"),
    ),
    "communication": (
        (
            "the doctor explained everything clearly",
            "they kept us informed all day",
            "my results were explained well",
        ),
        (
            "no one told us what was happening",
            "I got conflicting information",
            "the discharge letter was confusing",
        ),
        ("I received a letter with my results", "the doctor phoned me the next week"),
    ),
    "billing": (
        ("the billing office sorted my claim quickly", "the invoice was clear"),
        ("I was charged twice for the same scan", "the bill was full of errors"),
        ("I paid the bill online", "the invoice arrived a month later"),
    ),
    "parking": (
        ("parking was easy and free", "there were plenty of spaces"),
        ("parking was a nightmare", "the car park was full and expensive"),
        ("the car park is on level 2", "please add more parking signs"),
    ),
    "appointments": (
        ("booking was simple", "I got an appointment the same week"),
        ("my appointment was cancelled twice", "I could not get through to book"),
        ("I booked by phone", "my follow-up is in three months"),
    ),
}
#: context a comment may open with (no sentiment of its own)
_OPENERS = (
    "Came in for my CT scan last week.",
    "I visited my father on ward 4.",
    "This was my second visit to the clinic.",
    "Outpatient appointment for my diabetes review.",
    "My daughter was admitted overnight.",
    "I had a chest X-ray in the morning.",
    "Attended the emergency department on a Saturday.",
    "Follow-up for my lung nodule.",
    "Day surgery for my foot.",
    "Annual check-up.",
)
_POSITIVE_END = (
    "Thank you!", "Highly recommend.", "Great experience overall.", "Well done to the team.",
    "Five stars.", "", "",
)  # fmt: skip
_NEGATIVE_END = (
    "Very disappointed.", "Not good enough.", "I will complain formally.", "Never again.",
    "Please sort this out.", "", "",
)  # fmt: skip
_NEGATED_POSITIVE = (
    ("staff", "Honestly the staff were not bad at all."),
    ("waiting time", "The wait was not long, which I did not expect."),
    ("food", "The food was not bad, better than I feared."),
    ("staff", "Nobody was rude and nothing was too much trouble."),
    ("cleanliness", "I could not find a single thing wrong with the cleanliness."),
)
_SARCASM = (
    ("waiting time", "Great, another four hour wait."),
    ("staff", "Lovely to be ignored for an hour by the front desk."),
    ("appointments", "Brilliant, they lost my referral again."),
    ("waiting time", "Fantastic service if you enjoy sitting in corridors."),
    ("food", "Delicious cold toast, my favourite."),
    ("billing", "Wonderful, a second bill for the same scan."),
)
_NEGATED_NEGATIVE = (
    ("food", "The food was not great and not warm either."),
    ("communication", "Nobody ever explained the plan, not once."),
    ("staff", "The nurses were not helpful at all."),
    ("waiting time", "I would not call a five hour wait acceptable."),
    ("cleanliness", "The room was not clean when I arrived."),
)


def feedback_comments(n: int, seed: int) -> Iterator[GeneratedNote]:
    """``n`` comments (the design's ``feedback.jsonl`` lines), sentiments in rotation."""
    for i in range(n):
        rng = random.Random(f"{seed}:feedback:{i}")
        sentiment = SENTIMENTS[i % 3]
        text, topic = _comment(sentiment, rng)
        if rng.random() < 0.5:
            text = f"{rng.choice(_OPENERS)} {text}"
        time = dt.datetime(2022, 1, 1) + dt.timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
        yield GeneratedNote(
            {
                "note_id": f"fb_{i + 1:05d}",
                "subject_id": f"FB{rng.randrange(1, n + 1):05d}",
                "time": time.isoformat(),
                "kind": "feedback",
                "text": text,
                "sentiment": sentiment,
                "topic": topic,
            },
            [],
        )


def _sentence(clause: str) -> str:
    return clause[0].upper() + clause[1:] + "."


def _comment(sentiment: str, rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    topic = rng.choice(TOPICS)
    positive, negative, neutral = _CLAUSES[topic]
    if sentiment == "neutral":
        first = _sentence(rng.choice(neutral))
        other = rng.choice([t for t in TOPICS if t != topic])
        if roll < 0.4:
            return f"{first} {_sentence(rng.choice(_CLAUSES[other][2]))}", topic
        return first, topic
    if roll < 0.15:
        topic, text = rng.choice(
            _NEGATED_POSITIVE if sentiment == "positive" else _NEGATED_NEGATIVE
        )
        return text, topic
    if roll < 0.36:
        # mixed: the other sentiment first, the labelled one after "but" or in the main clause
        first_topic = rng.choice([t for t in TOPICS if t != topic])
        first_pos, first_neg, _ = _CLAUSES[first_topic]
        opening = rng.choice(first_neg if sentiment == "positive" else first_pos)
        closing = rng.choice(positive if sentiment == "positive" else negative)
        if roll < 0.28:
            return f"{opening[0].upper()}{opening[1:]}, but {closing}.", topic
        return f"Although {opening}, {closing}.", topic
    if sentiment == "negative" and roll < 0.44:
        topic, text = rng.choice(_SARCASM)
        return text, topic
    clause = rng.choice(positive if sentiment == "positive" else negative)
    end = rng.choice(_POSITIVE_END if sentiment == "positive" else _NEGATIVE_END)
    return (_sentence(clause) + (f" {end}" if end else "")), topic
