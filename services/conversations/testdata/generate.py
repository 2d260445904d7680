"""Writes the sample legacy files (threads-data.json, guest-memory.json) the import tests use.

Deterministic (fixed seed): 300 contacts in the shapes the legacy bot wrote, plus edge cases:
missing, null, empty and padded names, unicode (accents, emoji, CJK, RTL), numbers written two
ways across and within a file, bad dates, bad keys, wrong types, fields the formats do not
define, and threads-only or guests-only contacts. Run: python3 generate.py
"""
import json
import random

rng = random.Random(17)
FIRST = ["Juan", "María", "José", "Lucía", "Andrés", "Sofía", "Camilo", "Valentina", "Ñoño", "Zoë",
         "李雷", "Ahmed", "Ólafur", "Chloé", "Björn", "Renée"]
LAST = ["Pérez", "Gómez", "Rodríguez", "Martínez", "Núñez", "Castaño", "Öztürk", "O'Brien", "García-Márquez"]
LABELS = ["Potencial", "Consulta", "Reservó", "VIP", "Cancelado", "Grupo 🎉", "Pagó anticipo", "Sin respuesta"]

threads = {}
guests = {}


def phone(i):
    return f"57300{1000000 + i:07d}"


def date(i):
    day = 1 + i % 28
    month = 1 + i % 12
    if i % 3 == 0:
        return f"2025-{month:02d}-{day:02d}"
    return f"2025-{month:02d}-{day:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.{i % 1000:03d}Z"


for i in range(300):
    p = phone(i)
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    shape = i % 10
    if shape != 9:  # guests-only contacts have no thread
        record = {"threadId": f"thread_{i:04d}{rng.choice('abcdef')}", "chatId": f"{p}@s.whatsapp.net",
                  "userName": name}
        if i % 7 == 0:
            record["userName"] = None
        if i % 11 == 0:
            del record["userName"]
        if i % 5 == 0:
            record["lastActivity"] = date(i)  # a field the formats do not define
        threads[p] = record
    if shape != 8:  # threads-only contacts have no guest record
        record = {"name": name, "labels": rng.sample(LABELS, k=i % 4), "lastInteraction": date(i)}
        if i % 13 == 0:
            record["name"] = None
        if i % 17 == 0:
            del record["name"]
        if i % 19 == 0:
            record["name"] = ""
        if i % 23 == 0:
            record["name"] = f"  {name}  "
        if i % 6 == 0:
            record["lastInteraction"] = None
        if i % 29 == 0:
            del record["labels"]
        if i % 4 == 0:
            record["preferences"] = {"idioma": "es", "notificaciones": i % 2 == 0}
        if i % 9 == 0:
            record["notes"] = "Cliente frecuente — prefiere ☕ por la mañana"
        guests[p] = record

# One number written two ways across the files: merged into one contact.
threads["+57 300 200 0001"] = {"threadId": "thread_cross1", "chatId": "573002000001@s.whatsapp.net", "userName": "Ana"}
guests["573002000001"] = {"name": "Ana Núñez", "labels": ["VIP"], "lastInteraction": "2025-02-14"}
threads["573002000002"] = {"threadId": "thread_cross2", "chatId": "573002000002@s.whatsapp.net", "userName": "שרה"}
guests["(57) 300-200-0002"] = {"name": "שרה כהן", "labels": [], "lastInteraction": "2025-03-01T08:00:00Z"}
# One number written two ways in one file: the second (in key order) is quarantined.
guests["573002000003"] = {"name": "Luis", "labels": ["Consulta"], "lastInteraction": "2025-04-01"}
guests["+573002000003"] = {"name": "Luis M.", "labels": ["Consulta"], "lastInteraction": "2025-04-02"}
# Emoji and CJK names, a label list with a repeat.
guests["573002000004"] = {"name": "🌴 Playa Team 🌴", "labels": ["Grupo 🎉", "Grupo 🎉"], "lastInteraction": "2025-05-05"}
threads["573002000005"] = {"threadId": "thread_cjk", "chatId": "573002000005@s.whatsapp.net", "userName": "王小明"}
# Bad dates: the contact is quarantined whole, its thread record too.
guests["573002000006"] = {"name": "Fecha Mala", "labels": [], "lastInteraction": "2025-13-45"}
threads["573002000006"] = {"threadId": "thread_baddate", "chatId": "573002000006@s.whatsapp.net", "userName": "Fecha"}
guests["573002000007"] = {"name": "Ayer", "labels": [], "lastInteraction": "ayer"}
guests["573002000008"] = {"name": "Formato", "labels": [], "lastInteraction": "27/01/2025"}
# Bad keys and bad shapes.
guests["no-es-un-numero"] = {"name": "X", "labels": []}
threads["123"] = {"threadId": "thread_short", "chatId": "123@s.whatsapp.net"}
threads["573002000009"] = {"chatId": "573002000009@s.whatsapp.net", "userName": "Sin hilo"}
threads["573002000010"] = {"threadId": "hilo con espacios", "chatId": "573002000010@s.whatsapp.net"}
guests["573002000011"] = {"name": "Etiquetas", "labels": "VIP"}
guests["573002000012"] = {"name": "Número", "labels": ["ok", 7]}
guests["573002000013"] = "no soy un objeto"
guests["573002000014"] = {"name": "x" * 300, "labels": []}

with open("threads-data.json", "w", encoding="utf-8") as f:
    json.dump(threads, f, ensure_ascii=False, indent=2)
    f.write("\n")
with open("guest-memory.json", "w", encoding="utf-8") as f:
    json.dump(guests, f, ensure_ascii=False, indent=2)
    f.write("\n")
