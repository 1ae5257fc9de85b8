"""Pure parts of the local target: spec validation, names, tc plans/parsing, program files."""

from __future__ import annotations

import json
import shlex

import pytest

from jupiter.errors import InvalidInput
from jupiter.local import names, shaping
from jupiter.local.programs import parse_programs, render_group
from jupiter.local.spec import TestbedSpec
from jupiter.local.testbed import layout, node_addresses

NODES = [{"name": "home", "cpu_share": 1}, {"name": "edge1", "cpu_share": 0.5}, "edge2"]


def test_spec_accepts_matrix_and_list_links() -> None:
    a = TestbedSpec.from_dict(
        {"deployment": "demo", "nodes": NODES, "links": {"home": {"edge1": 20, "home": 5}}}
    )
    b = TestbedSpec.from_dict(
        {
            "deployment": "demo",
            "nodes": NODES,
            "links": [{"src": "home", "dst": "edge1", "mbit": 20}],
        }
    )
    assert a.links == b.links == {"home": {"edge1": 20.0}}  # self-links are dropped
    assert a.node_names == ["home", "edge1", "edge2"]
    assert a.nodes[2].cpu_share is None
    assert a.shaped_links() == [("home", "edge1", 20.0)]
    assert a.subnet == "10.77.0.0/24"


def test_spec_reports_every_problem_with_its_field() -> None:
    with pytest.raises(InvalidInput) as err:
        TestbedSpec.from_dict(
            {
                "deployment": "Bad_Name",
                "subnet": "10.77.0.1/24",
                "nodes": [{"name": "a", "cpu_share": -1}, {"name": "a"}, {"name": "b/c"}],
                "links": {"a": {"zz": 5}},
            },
            "spec.json",
        )
    fields = {p.field for p in err.value.problems}
    assert {
        "deployment",
        "subnet",
        "nodes[0].cpu_share",
        "nodes[1].name",
        "nodes[2].name",
    } <= fields
    assert "links.a.zz" in fields
    assert all(p.file == "spec.json" for p in err.value.problems)
    assert "Bad_Name" in str(err.value)


def test_spec_tcp_congestion_defaults_to_reno_and_is_checked() -> None:
    spec = TestbedSpec.from_dict({"deployment": "d", "nodes": NODES})
    assert spec.tcp_congestion == "reno" and spec.to_dict()["tcp_congestion"] == "reno"
    assert layout(spec, "netns", None)["tcp_congestion"] == "reno"
    assert layout(spec, "loopback", "why")["tcp_congestion"] is None  # no namespaces
    keep = TestbedSpec.from_dict({"deployment": "d", "nodes": NODES, "tcp_congestion": ""})
    assert keep.tcp_congestion == "" and layout(keep, "netns", None)["tcp_congestion"] is None
    assert TestbedSpec.from_dict(spec.to_dict()) == spec
    for bad in ("BBR", "cubic; reboot", 3):
        with pytest.raises(InvalidInput) as err:
            TestbedSpec.from_dict({"deployment": "d", "nodes": NODES, "tcp_congestion": bad},
                                  "spec.json")
        (problem,) = err.value.problems
        assert (problem.file, problem.field) == ("spec.json", "tcp_congestion")
        assert f"{bad!r} is not a TCP congestion control name" in problem.message


@pytest.mark.parametrize("mbit", [0, -3, 20000, "fast"])
def test_spec_rejects_bad_rates(mbit: object) -> None:
    with pytest.raises(InvalidInput, match=r"links\.home\.edge1"):
        TestbedSpec.from_dict(
            {"deployment": "d", "nodes": NODES, "links": {"home": {"edge1": mbit}}}
        )


def test_names_fit_the_kernel_limits_and_never_collide() -> None:
    short = "jupiter"
    assert names.bridge_name(short) == "jb-jupiter"
    assert names.veth_name(short, 5) == "jv-jupiter-5"
    assert names.netns_name(short, 5) == "jn-jupiter-5"
    long_a = "a-very-long-deployment-name-1"
    long_b = "a-very-long-deployment-name-2"
    for dep in (long_a, long_b):
        assert len(names.bridge_name(dep)) <= 15
        assert len(names.veth_name(dep, 249)) <= 15
    assert names.bridge_name(long_a) != names.bridge_name(long_b)
    assert names.veth_name(long_a, 0) != names.veth_name(long_b, 0)
    # namespaces are parsed back exactly: deployment "a" does not own "a-1"'s namespaces
    assert names.netns_index("a", "jn-a-3") == 3
    assert names.netns_index("a", "jn-a-1-3") is None
    assert names.netns_index("a-1", "jn-a-1-3") == 3
    assert names.veth_index(long_a, names.veth_name(long_a, 7)) == 7
    assert names.veth_index(long_b, names.veth_name(long_a, 7)) is None


def test_addresses_per_mode() -> None:
    spec = TestbedSpec.from_dict({"deployment": "d", "subnet": "10.9.8.0/24", "nodes": NODES})
    assert node_addresses(spec, "netns") == {
        "home": "10.9.8.2",
        "edge1": "10.9.8.3",
        "edge2": "10.9.8.4",
    }
    assert node_addresses(spec, "loopback") == {
        "home": "127.0.1.2",
        "edge1": "127.0.1.3",
        "edge2": "127.0.1.4",
    }
    st = layout(spec, "loopback", "why")
    assert st["shaped"] is False and st["reason"] == "why"
    assert all(n["netns"] is None for n in st["nodes"])


def test_htb_plan_parameters() -> None:
    slow = shaping.LinkClass("1:3", "10.0.0.3", shaping.mbit_to_kbit(2))
    fast = shaping.LinkClass("1:4", "10.0.0.4", shaping.mbit_to_kbit(100))
    assert slow.burst == 2 * shaping.FRAME  # at least two full frames
    assert fast.burst == 62500  # 5 ms at 100 Mbit/s
    assert shaping.FRAME <= slow.quantum <= 200_000
    assert fast.quantum == 200_000  # clamped: no "quantum is big" warning
    assert slow.queue_packets == shaping.MIN_QUEUE
    lines = shaping.tc_lines("eth0", [slow, fast])
    assert lines[0].startswith("qdisc add dev eth0 root handle 1: htb default 0")
    assert any("match ip dst 10.0.0.4/32 flowid 1:4" in line for line in lines)
    assert any("rate 100000kbit ceil 100000kbit" in line for line in lines)


def test_observed_fingerprint_matches_desired() -> None:
    """Parse tc output as iproute2 6.1 prints it (captured from a real testbed)."""
    classes = [
        shaping.LinkClass("1:3", "10.79.5.3", 20000),
        shaping.LinkClass("1:4", "10.79.5.4", 2500),
    ]
    qdiscs = [
        {"kind": "htb", "handle": "1:", "root": True, "options": {"r2q": 10, "default": "0"}},
        {"kind": "pfifo", "handle": "4:", "parent": "1:4", "options": {"limit": 16}},
        {"kind": "pfifo", "handle": "3:", "parent": "1:3", "options": {"limit": 83}},
    ]
    class_text = (
        "class htb 1:4 root leaf 4: prio 0 rate 2500Kbit ceil 2500Kbit burst 3028b cburst 3028b \n"
        "class htb 1:3 root leaf 3: prio 0 rate 20Mbit ceil 20Mbit burst 12500b cburst 12500b \n"
    )
    filters = [
        {"parent": "1:", "protocol": "ip", "pref": 1, "kind": "u32", "chain": 0},
        {"kind": "u32", "options": {"fh": "800:", "ht_divisor": 1}},
        {
            "kind": "u32",
            "options": {
                "fh": "800::800",
                "flowid": "1:3",
                "match": {"value": "a4f0503", "mask": "ffffffff", "offmask": "", "off": 16},
            },
        },
        {
            "kind": "u32",
            "options": {
                "fh": "800::801",
                "flowid": "1:4",
                "match": {"value": "a4f0504", "mask": "ffffffff", "offmask": "", "off": 16},
            },
        },
    ]
    assert shaping.observed(qdiscs, class_text, filters) == shaping.desired(classes)
    # a changed rate is seen as a difference
    other = class_text.replace("20Mbit ceil 20Mbit", "10Mbit ceil 10Mbit")
    assert shaping.observed(qdiscs, other, filters) != shaping.desired(classes)
    # nothing configured
    assert shaping.observed([{"kind": "noqueue", "root": True}], "", []) == shaping.desired([])
    assert shaping.parse_rate("2Mibit") == 2 * 1024**2


def test_program_files_carry_argv_and_env_the_ini_cannot() -> None:
    hostile = "a ;b #c %d 'e\" \n f"
    progs = parse_programs(
        [{"name": "srv", "node": "home", "command": ["prog", hostile], "env": {"X": hostile}}],
        "demo",
    )
    conf, files = render_group(
        state_dir="/s", deployment="dep", group="demo", programs=progs, python="/py"
    )
    assert hostile not in conf and "%d" not in conf
    [(fname, content)] = files.items()
    assert fname.startswith("demo-srv.") and fname.endswith(".json")
    data = json.loads(content)
    assert data["argv"] == ["prog", hostile] and data["env"] == {"X": hostile}
    command = next(line for line in conf.splitlines() if line.startswith("command="))
    argv = shlex.split(command.removeprefix("command="))
    assert argv[:3] == ["/py", "-m", "jupiter.local.execnode"]
    assert argv[-1] == f"/s/supervisor/programs/{fname}"
    # a different env gives a different file name, hence a different supervisord command
    progs2 = parse_programs(
        [{"name": "srv", "node": "home", "command": ["prog", hostile], "env": {"X": "other"}}],
        "demo",
    )
    _, files2 = render_group(
        state_dir="/s", deployment="dep", group="demo", programs=progs2, python="/py"
    )
    assert set(files2) != set(files)


def test_program_spec_problems_are_named() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_programs(
            [
                {"name": "ok", "node": "home", "command": ["x"]},
                {"name": "ok", "node": "home", "command": ["x"]},
                {"name": "bad:name", "node": "home", "command": ["x"]},
                {"name": "nocmd", "node": "home", "command": []},
                {"name": "url", "node": "home", "command": ["x"], "ready_url": "ftp://x"},
                {"name": "extra", "node": "home", "command": ["x"], "colour": "red"},
            ],
            "Bad-Group",
        )
    text = str(err.value)
    for needle in ("group", "appears twice", "bad:name", "nocmd", "ftp://x", "colour"):
        assert needle in text
