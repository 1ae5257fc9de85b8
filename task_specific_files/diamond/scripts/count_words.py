"""count_words: the most frequent words of an item.

``process`` interface. Input ``tokens.txt`` (from tokenize); output ``top_words.tsv``:
``word<TAB>count`` for the TOP most frequent words, most frequent first, ties broken
alphabetically.
"""

from collections import Counter

TOP = 10


def process(item: str, inputs: dict[str, bytes]) -> dict[str, bytes]:
    counts = Counter(inputs["tokens.txt"].decode("utf-8").split())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    return {"top_words.tsv": "".join(f"{w}\t{n}\n" for w, n in ranked).encode("utf-8")}
