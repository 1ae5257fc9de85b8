"""report: join both branches of the diamond into one text report (the result).

``process`` interface with two inputs per item: ``top_words.tsv`` (count_words) and
``lengths.tsv`` (word_lengths). Output ``report.txt`` goes home.
"""


def _rows(data: bytes) -> list[tuple[str, int]]:
    rows = []
    for line in data.decode("utf-8").splitlines():
        key, _, value = line.partition("\t")
        if key:
            rows.append((key, int(value)))
    return rows


def process(item: str, inputs: dict[str, bytes]) -> dict[str, bytes]:
    top = _rows(inputs["top_words.tsv"])
    lengths = [(int(k), n) for k, n in _rows(inputs["lengths.tsv"])]
    words = sum(n for _, n in lengths)
    mean = sum(k * n for k, n in lengths) / words if words else 0.0
    out = [f"item {item}: {words} words, mean length {mean:.2f}", "top words:"]
    out += [f"  {w:<16} {n}" for w, n in top]
    out.append("lengths:")
    out += [f"  {k:>3} {'#' * min(n, 60)} {n}" for k, n in lengths]
    return {"report.txt": ("\n".join(out) + "\n").encode("utf-8")}
