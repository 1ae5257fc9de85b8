"""Small test apps for CIRCE, written into a temporary folder (scripts + App model).

* :func:`dnad_app`: the 14-task DNAD shape of Jupiter's network monitoring app, legacy
  interface, file names carrying the item prefix (``<n>botnet.ipsum`` -> ``<n>split_0`` ->
  ... -> ``<n>global.log``). Every output embeds the digests of its inputs, so a join that
  mixed two items would change the bytes at home.
* :func:`diamond_app`: A -> (B, C) -> D -> home with the ``process`` interface.
* :func:`chain_app`: a linear chain of ``process`` tasks (optionally slow / failing).
* :func:`gated_script`: a ``process`` task that works only once a gate file exists.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from jupiter.app.model import HOME, App, Task, safe_key

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "task_specific_files"


def results_tree(folder: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file under ``folder`` (hidden folders skipped)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }

LEGACY_COMMON = '''
import hashlib
import os
import re


def prefix(name):
    return re.match(r"^[0-9]*", name).group(0)


def digest(pathin, names):
    h = hashlib.sha256()
    for n in names:
        with open(os.path.join(pathin, n), "rb") as f:
            h.update(n.encode() + b"\\0" + f.read())
    return h.hexdigest()[:16]
'''

LOCAL_PRO = '''
import os
import zlib
from dnadlib import prefix


def task(filename, pathin, pathout):
    num = prefix(filename)
    parts = [[], [], []]
    with open(os.path.join(pathin, filename)) as f:
        for line in f:
            if line.startswith("!") or not line.strip():
                continue
            src = line.split()[1]
            parts[zlib.crc32(src.encode(), 14635) % 3].append(line)
    out = []
    for i, lines in enumerate(parts):
        name = os.path.join(pathout, f"{num}split_{i}")
        with open(name, "w") as f:
            f.write("".join(lines))
        out.append(name)
    return out
'''

AGGREGATE = '''
import os
from dnadlib import prefix


def task(filename, pathin, pathout):
    num = prefix(filename)
    counts = {}
    with open(pathin + filename) as f:
        for line in f:
            src = line.split()[1]
            counts[src] = counts.get(src, 0) + 1
    with open(os.path.join(pathout, f"{num}merged_file{I}.ipsum"), "w") as f:
        for src in sorted(counts):
            f.write(f"{src} {counts[src]}\\n")
'''

DETECTOR = '''
import os
from dnadlib import digest, prefix


def task(filename, pathin, pathout):
    num = prefix(filename)
    rows = []
    with open(os.path.join(pathin, filename)) as f:
        for line in f:
            src, n = line.split()
            rows.append((src, int(n)))
    mean = sum(n for _, n in rows) / max(1, len(rows))
    flagged = sorted(src for src, n in rows if n > mean * FACTOR)
    with open(os.path.join(pathout, f"{num}anomalies_KIND{I}.log"), "w") as f:
        f.write(f"item={num} in={digest(pathin, [filename])}\\n")
        f.write("\\n".join(flagged) + "\\n")
'''

FUSION = '''
import os
from dnadlib import digest, prefix


def task(filelist, pathin, pathout):
    assert isinstance(filelist, list) and len(filelist) == 2, filelist
    num = prefix(filelist[0])
    assert all(prefix(f) == num for f in filelist), filelist
    flagged = set()
    for name in filelist:
        with open(os.path.join(pathin, name)) as f:
            lines = f.read().splitlines()[1:]
        flagged |= {x for x in lines if x}
    with open(os.path.join(pathout, f"{num}fusion_center{I}.log"), "w") as f:
        f.write(f"item={num} in={digest(pathin, filelist)}\\n")
        f.write("\\n".join(sorted(flagged)) + "\\n")
    return [os.path.join(pathout, f"{num}fusion_center{I}.log")]
'''

GLOBAL = '''
import os
from dnadlib import digest, prefix


def task(filelist, pathin, pathout):
    assert len(filelist) == 3, filelist
    num = prefix(filelist[0])
    assert all(prefix(f) == num for f in filelist), filelist
    union = set()
    for name in filelist:
        with open(os.path.join(pathin, name)) as f:
            union |= {x for x in f.read().splitlines()[1:] if x}
    with open(os.path.join(pathout, f"{num}global_anomalies.log"), "w") as f:
        f.write(f"item={num} in={digest(pathin, filelist)}\\n")
        f.write("\\n".join(sorted(union)) + "\\n")
'''


def _task(name: str, script: str, children: list[str], *, num_inputs: int = 1,
          mode: str = "broadcast", interface: str = "legacy") -> Task:
    return Task(name=name, key=safe_key(name), script=script, num_inputs=num_inputs,
                mode=mode, children=tuple(children), interface=interface)  # type: ignore[arg-type]


def dnad_app(root: Path) -> App:
    scripts = root / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    (scripts / "dnadlib.py").write_text(LEGACY_COMMON)
    tasks = [_task("local_pro", "scripts/local_pro.py",
                   ["aggregate0", "aggregate1", "aggregate2"], mode="split")]
    (scripts / "local_pro.py").write_text(LOCAL_PRO)
    for i in range(3):
        (scripts / f"aggregate{i}.py").write_text(AGGREGATE.replace("{I}", str(i)))
        (scripts / f"simple_detector{i}.py").write_text(
            DETECTOR.replace("{I}", str(i)).replace("KIND", "simple").replace("FACTOR", "1.5"))
        (scripts / f"astute_detector{i}.py").write_text(
            DETECTOR.replace("{I}", str(i)).replace("KIND", "astute").replace("FACTOR", "1.0"))
        (scripts / f"fusion_center{i}.py").write_text(FUSION.replace("{I}", str(i)))
        tasks += [
            _task(f"aggregate{i}", f"scripts/aggregate{i}.py",
                  [f"simple_detector{i}", f"astute_detector{i}"]),
            _task(f"simple_detector{i}", f"scripts/simple_detector{i}.py", [f"fusion_center{i}"]),
            _task(f"astute_detector{i}", f"scripts/astute_detector{i}.py", [f"fusion_center{i}"]),
            _task(f"fusion_center{i}", f"scripts/fusion_center{i}.py", ["global_fusion"],
                  num_inputs=2),
        ]
    (scripts / "global_fusion.py").write_text(GLOBAL)
    tasks.append(_task("global_fusion", "scripts/global_fusion.py", [HOME], num_inputs=3))
    return App(name="dnad-test", tasks=tuple(tasks), root=str(root), format="legacy")


def packet_file(n: int, packets: int = 60) -> bytes:
    """An ipsumdump-like input whose content depends on ``n``."""
    lines = ["!IPSummaryDump 1.3", "!data timestamp ip_src sport ip_dst dport ip_len ip_proto"]
    for k in range(packets):
        src = f"10.0.{(n * 7 + k * k) % 11}.{(n + k) % 5}"
        lines.append(f"{1500000000 + k}.000001 {src} {1000 + k} 10.1.0.1 80 60 T")
    return ("\n".join(lines) + "\n").encode()


DIAMOND = {
    "a.py": '''
import hashlib


def process(item, inputs):
    (name, data), = inputs.items()
    return {"left.bin": b"L" + data, "right.bin": b"R" + hashlib.sha256(data).digest()}
''',
    "b.py": '''
def process(item, inputs):
    return {f"{item}-b.txt": b"".join(sorted(inputs.values()))[::-1]}
''',
    "c.py": '''
def process(item, inputs):
    return {f"{item}-c.txt": b"|".join(k.encode() for k in inputs) + b"#" + str(
        sum(len(v) for v in inputs.values())).encode()}
''',
    "d.py": '''
import hashlib


def process(item, inputs):
    assert len(inputs) == 2, sorted(inputs)
    assert all(k.startswith(item + "-") for k in inputs), (item, sorted(inputs))
    h = hashlib.sha256()
    for k, v in inputs.items():
        h.update(k.encode() + v)
    return {"result.txt": f"{item} {h.hexdigest()}\\n".encode()}
''',
}


def diamond_app(root: Path) -> App:
    scripts = root / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    for name, text in DIAMOND.items():
        (scripts / name).write_text(textwrap.dedent(text))
    tasks = (
        _task("A", "scripts/a.py", ["B", "C"], interface="process"),
        _task("B", "scripts/b.py", ["D"], interface="process"),
        _task("C", "scripts/c.py", ["D"], interface="process"),
        _task("D", "scripts/d.py", [HOME], num_inputs=2, interface="process"),
    )
    return App(name="diamond-test", tasks=tasks, root=str(root))


CHAIN_STAGE = '''
import hashlib
import os
import time

SLOW = float(os.environ.get("CHAIN_SLOW_{KEY}", "0"))
FAIL = os.environ.get("CHAIN_FAIL_{KEY}", "")


def process(item, inputs):
    (name, data), = inputs.items()
    if FAIL and item.startswith(FAIL):
        raise ValueError(f"refusing item {item}")
    if SLOW:
        time.sleep(SLOW)
    return {f"{item}.s{N}": data + b"|{N}:" + hashlib.sha256(data).hexdigest()[:8].encode()}
'''


def chain_app(root: Path, stages: int = 3, *, work_seconds: dict[int, float] | None = None,
              fail_prefix: dict[int, str] | None = None) -> App:
    """``s0 -> s1 -> ... -> home``; stage ``i`` sleeps ``work_seconds[i]`` per item and raises
    for items starting with ``fail_prefix[i]``."""
    scripts = root / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    tasks = []
    for i in range(stages):
        text = CHAIN_STAGE.replace("{N}", str(i)).replace("{KEY}", str(i))
        text = text.replace(f'os.environ.get("CHAIN_SLOW_{i}", "0")',
                            repr(str((work_seconds or {}).get(i, 0.0))))
        text = text.replace(f'os.environ.get("CHAIN_FAIL_{i}", "")',
                            repr((fail_prefix or {}).get(i, "")))
        (scripts / f"s{i}.py").write_text(text)
        child = f"s{i + 1}" if i + 1 < stages else HOME
        tasks.append(_task(f"s{i}", f"scripts/s{i}.py", [child], interface="process"))
    return App(name="chain-test", tasks=tuple(tasks), root=str(root))


# The task is "slow": it works only while the gate file exists (the app's own behaviour;
# a test opens the gate once it has observed what it waits for).
GATED = '''
import os
import time

GATE = {gate!r}


def process(item, inputs):
    deadline = time.monotonic() + 120
    while not os.path.exists(GATE):
        if time.monotonic() > deadline:
            raise TimeoutError("gate never opened")
        time.sleep(0.01)
    (name, data), = inputs.items()
    return {{item + {suffix!r}: data.upper()}}
'''


def gated_script(gate: Path, suffix: str) -> str:
    """A task script whose output ``<item><suffix>`` (its input upper-cased) waits for
    ``gate`` to exist."""
    return GATED.format(gate=str(gate), suffix=suffix)
