#!/usr/bin/env python3
"""Writes the messy legacy stores of this directory from ../missions_v2_store.json.

Each bad board is a sample board with fresh ids (every UUID remapped, so no two fixtures share
an id by accident) and one defect; `tests/messy_store.rs` says what each must be quarantined for.
Run it again after changing the sample store: `python3 make.py`.
"""
import copy
import json
import re
import uuid
from pathlib import Path

HERE = Path(__file__).parent
SAMPLE = json.loads((HERE.parent / "missions_v2_store.json").read_text())
NAMESPACE = uuid.UUID("6d1f3c52-6a43-4d1e-9a77-0b1c2f7e9a10")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def fresh(board, tag):
    """The board with every UUID replaced by one derived from `tag`."""
    text = json.dumps(board)
    text = UUID.sub(lambda m: str(uuid.uuid5(NAMESPACE, f"{tag}/{m.group(0)}")), text)
    return json.loads(text)


def board(index, tag):
    return fresh(copy.deepcopy(SAMPLE["boards"][index]), tag)


def store(boards):
    return {"version": 1, "boards": boards}


def write(name, value):
    (HERE / name).write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def first(items, keep):
    return next(item for item in items if keep(item))


# A mixed store: good boards and boards each breaking one rule, in no particular order.
mixed = []


def bad(tag, index, change):
    b = board(index, tag)
    change(b)
    mixed.append(b)


mixed.append(board(0, "good-0"))
bad("petals-total", 0, lambda b: b["slots"][2].update(petalsTotal=0, petalsRemaining=0))
bad("reroll", 0, lambda b: b["slots"][1].update(rerollRemaining=-1))
bad("offers", 3, lambda b: b["slots"][0].update(offers=-1))
mixed.append(board(1, "good-1"))
bad("petals-before", 0, lambda b: b["runs"][0]["heartbeats"][0].update(petalsBefore=-1))
bad("target", 3, lambda b: b["runs"][1]["progress"].update(target=0))
bad("shield", 0, lambda b: b["boss"].update(shieldCurrent=b["boss"]["shieldMax"] + 1))
bad("phase", 0, lambda b: b["boss"].update(phase=3))


def unprotected(b):
    day = first((d for r in b["runs"] for d in r["days"]), lambda d: True)
    day.update(outcome="protected", effectInstanceId=None)


bad("protected", 3, unprotected)
bad("claim-xp", 0, lambda b: b["claims"][0]["reward"].update(xp=-10))
bad("season-101", 3, lambda b: b.update(seasonId="s" * 101))
mixed.append(board(2, "good-2"))


def two_active(b):
    run = copy.deepcopy(first(b["runs"], lambda r: r["status"] == "active"))
    run["runId"] = str(uuid.uuid5(NAMESPACE, "two-active/second-run"))
    run["heartbeats"] = [
        dict(h, heartbeatId=str(uuid.uuid5(NAMESPACE, f"two-active/{h['heartbeatId']}")))
        for h in run["heartbeats"]
    ]
    b["runs"].append(run)


bad("two-active", 3, two_active)
bad("nul", 0, lambda b: b["communications"][0].update(message="before\u0000after"))
bad("season-unicode", 3, lambda b: b.update(seasonId="Primavera 2026 \U0001F338"))
bad("nanos", 3, lambda b: b["runs"][0].update(selectedAt="2025-03-01T08:00:00.123456789Z"))
bad("user-number", 3, lambda b: b.update(userId=12345))
bad("petals-string", 3, lambda b: b["slots"][0].update(petalsTotal="3"))
bad("huge", 3, lambda b: b.update(timeZone="x" * 5_000))
write("mixed_store.json", store(mixed))

# A lone UTF-16 surrogate (what JavaScript's slice() leaves of an emoji) in one board's message.
lone = [board(0, "lone-good"), board(3, "lone-bad"), board(1, "lone-good-2")]
lone[1]["communications"][0]["message"] = "LONE_SURROGATE_HERE"
text = json.dumps(store(lone), indent=2).replace("LONE_SURROGATE_HERE", "cut emoji \\ud83d")
(HERE / "lone_surrogate.json").write_text(text + "\n")

# Ids of another board: a new user's board holding the slots of the sample's a54b00cf board,
# and two boards of one store sharing a run.
owner = SAMPLE["boards"][4]
taker = board(4, "taker")
for slot, original in zip(taker["slots"], owner["slots"]):
    slot["slotId"] = original["slotId"]
twin_a = board(0, "twin-a")
twin_b = board(3, "twin-b")
twin_b["runs"][1]["runId"] = twin_a["runs"][1]["runId"]
for slot in twin_b["slots"]:
    if slot["runId"] is not None and slot["slotKey"] == twin_b["runs"][1]["slotKey"]:
        slot["runId"] = twin_a["runs"][1]["runId"]
write("id_reuse.json", store([taker, board(1, "bystander"), twin_a, twin_b]))

# Fields the format does not define: kept on a board and its slots, refused deeper down.
kept = board(0, "legacy-kept")
kept["legacyFlags"] = {"vip": True, "imports": [1, 2.5, "x"], "big": 12345678901}
kept["slots"][0]["legacyColor"] = "#ff00aa"
deep = board(3, "legacy-deep")
deep["runs"][0]["legacyNote"] = "written by hand"
write("legacy_fields.json", store([kept, board(1, "legacy-plain"), deep]))
