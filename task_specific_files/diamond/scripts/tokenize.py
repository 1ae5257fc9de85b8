"""tokenize: split a text into lower-case words, one per line.

``process`` interface: ``inputs`` holds the one submitted file of this item; the output
``tokens.txt`` is broadcast to both children.
"""

import re

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def process(item: str, inputs: dict[str, bytes]) -> dict[str, bytes]:
    words: list[str] = []
    for name in sorted(inputs):
        words.extend(WORD.findall(inputs[name].decode("utf-8", "replace").lower()))
    return {"tokens.txt": "".join(w + "\n" for w in words).encode("utf-8")}
