"""word_lengths: histogram of word lengths of an item.

``process`` interface. Input ``tokens.txt`` (from tokenize); output ``lengths.tsv``:
``length<TAB>count`` for every length that occurs, shortest first.
"""

from collections import Counter


def process(item: str, inputs: dict[str, bytes]) -> dict[str, bytes]:
    hist = Counter(len(w) for w in inputs["tokens.txt"].decode("utf-8").split())
    lines = "".join(f"{length}\t{hist[length]}\n" for length in sorted(hist))
    return {"lengths.tsv": lines.encode("utf-8")}
