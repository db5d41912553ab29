"""The embedded store: pymongo behaviour, atomicity across processes, use from threads."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from mlipflow.embedded import EmbeddedMongoClient


def test_basic_pymongo_api(tmp_path):
    db = EmbeddedMongoClient(tmp_path / "s")["db"]
    db.c.insert_many([{"_id": i, "v": i * i} for i in range(10)])
    assert db.c.count_documents({"v": {"$gte": 25}}) == 5
    assert [d["_id"] for d in db.c.find({}, sort=[("v", -1)], limit=2)] == [9, 8]
    doc = db.c.find_one_and_update({"_id": 3}, {"$inc": {"v": 1}}, return_document=True)
    assert doc["v"] == 10
    agg = list(db.c.aggregate([{"$match": {"v": {"$lt": 10}}}, {"$group": {"_id": None, "n": {"$sum": 1}}}]))
    assert agg[0]["n"] == 3  # 0, 1, 4 (3 became 10)


def test_data_persists_across_clients(tmp_path):
    EmbeddedMongoClient(tmp_path / "s")["db"].c.insert_one({"_id": "x", "v": 1})
    assert EmbeddedMongoClient(tmp_path / "s")["db"].c.find_one({"_id": "x"})["v"] == 1


INCREMENT = """
import sys
from mlipflow.embedded import EmbeddedMongoClient
coll = EmbeddedMongoClient(sys.argv[1])["db"]["counter"]
for _ in range(int(sys.argv[2])):
    # only correct if find_one_and_update is atomic across processes
    doc = coll.find_one_and_update({"_id": "c"}, {"$inc": {"n": 1}}, return_document=True)
    coll.insert_one({"seen": doc["n"]})
"""


def test_find_one_and_update_is_atomic_across_processes(tmp_path):
    path = str(tmp_path / "s")
    EmbeddedMongoClient(path)["db"]["counter"].insert_one({"_id": "c", "n": 0})
    procs = [subprocess.Popen([sys.executable, "-c", INCREMENT, path, "40"]) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    coll = EmbeddedMongoClient(path)["db"]["counter"]
    assert coll.find_one({"_id": "c"})["n"] == 120
    seen = [d["seen"] for d in coll.find({"seen": {"$exists": True}})]
    assert sorted(seen) == list(range(1, 121))  # every increment observed exactly once


def test_threads_share_a_client(tmp_path):
    coll = EmbeddedMongoClient(tmp_path / "s")["db"]["t"]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(50):
                coll.insert_one({"k": k, "i": i})
                coll.count_documents({"k": k})
        except BaseException as exc:  # pragma: no cover - only on failure
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert coll.count_documents({}) == 200


def test_query_index_follows_other_clients_writes(tmp_path, monkeypatch):
    """Indexed queries see inserts, updates and deletes of another connection (incremental change log),
    also after the log was pruned past what a reader had seen (it then rebuilds in full)."""
    import mlipflow.embedded as embedded

    a = EmbeddedMongoClient(tmp_path / "s")["db"].c
    b = EmbeddedMongoClient(tmp_path / "s")["db"].c
    a.create_index("state")
    a.insert_many([{"_id": i, "state": "READY"} for i in range(50)])
    assert a.count_documents({"state": "READY"}) == 50  # builds a's index
    b.update_many({"_id": {"$lt": 10}}, {"$set": {"state": "RUNNING"}})
    b.delete_one({"_id": 49})
    b.insert_one({"_id": 100, "state": "READY"})
    assert a.count_documents({"state": "READY"}) == 40
    assert sorted(d["_id"] for d in a.find({"state": "RUNNING"})) == list(range(10))
    assert a.find_one({"_id": 49}) is None and a.find_one({"state": "READY", "_id": 100})
    c = EmbeddedMongoClient(tmp_path / "s")["db"].c
    assert c.count_documents({"state": "READY"}) == 40  # c builds its index, then looks away
    monkeypatch.setattr(embedded, "CHANGES_KEPT", 5)
    for i in range(30):  # a and b write in turns and read each other's changes; the log gets pruned
        b.update_one({"_id": 20 + i % 5}, {"$set": {"state": f"S{i}"}})
        a.update_one({"_id": 0}, {"$set": {"n": i}})
        b.count_documents({"state": "READY"})
    log = b.database.client._store[b.database.name][b.name]._connection  # the collection file of b
    assert log.execute(f"SELECT COUNT(*) FROM {embedded.CHANGES}").fetchone()[0] < 30
    assert c.count_documents({"state": "S29"}) == 1 and c.count_documents({"state": "READY"}) == 35


def test_documents_over_16_mib_are_refused_as_mongodb_refuses_them(tmp_path):
    """MongoDB's limit: DocumentTooLarge for an insert, a replacement or an update document over 16 MiB,
    WriteError 17419 for an update whose result would be; nothing is written.  16 MiB less a little fits."""
    from pymongo import ReplaceOne
    from pymongo.errors import DocumentTooLarge, WriteError

    from mlipflow.embedded import MAX_BSON_SIZE

    db = EmbeddedMongoClient(tmp_path / "s")["db"]
    assert db.client.max_bson_size == MAX_BSON_SIZE == 16 * 1024 * 1024
    assert db.command("hello")["maxBsonObjectSize"] == MAX_BSON_SIZE
    too_big, half = "a" * MAX_BSON_SIZE, "b" * (9 * 1024 * 1024)
    db.c.insert_one({"_id": 1, "x": half})
    for refused in (lambda: db.c.insert_one({"_id": 2, "x": too_big}),
                    lambda: db.c.insert_many([{"_id": 3, "x": too_big}]),
                    lambda: db.c.replace_one({"_id": 1}, {"x": too_big}),
                    lambda: db.c.find_one_and_replace({"_id": 1}, {"x": too_big}, upsert=True),
                    lambda: db.c.bulk_write([ReplaceOne({"_id": 1}, {"x": too_big})]),
                    lambda: db.c.update_one({"_id": 1}, {"$set": {"y": too_big}})):
        with pytest.raises(DocumentTooLarge, match="BSON document too large"):
            refused()
    for grows in (lambda: db.c.update_one({"_id": 1}, {"$set": {"y": half}}),
                  lambda: db.c.update_many({}, {"$set": {"y": half}}),
                  lambda: db.c.find_one_and_update({"_id": 1}, {"$set": {"y": half}})):
        with pytest.raises(WriteError) as err:
            grows()
        assert err.value.code == 17419
    assert [d["_id"] for d in db.c.find({})] == [1] and set(db.c.find_one({"_id": 1})) == {"_id", "x"}
    db.c.insert_one({"_id": 4, "x": "c" * (MAX_BSON_SIZE - 100)})  # just under the limit: stored
    assert len(EmbeddedMongoClient(tmp_path / "s")["db"].c.find_one({"_id": 4})["x"]) == MAX_BSON_SIZE - 100


FORKED_INCREMENTS = """
import os, sys
from mlipflow.embedded import EmbeddedMongoClient
coll = EmbeddedMongoClient(sys.argv[1])["db"]["counter"]
coll.insert_one({"_id": "c", "n": 0})
assert coll.find_one({"_id": "c"})["n"] == 0  # the parent has used its connections and lock
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for _ in range(500):
                coll.update_one({"_id": "c"}, {"$inc": {"n": 1}})
            code = 0
        finally:
            os._exit(code)
    children.append(pid)
coll.update_one({"_id": "c"}, {"$inc": {"n": 1}})  # the parent goes on using its own client meanwhile
codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
print(codes, coll.find_one({"_id": "c"})["n"])
"""


def test_a_client_used_after_fork_reopens_and_loses_no_update(tmp_path):
    """4 children forked after the store was opened, 500 ``$inc`` each, plus one by the parent: exactly 2001
    (inheriting the parent's SQLite connections and ``flock`` lost about half of them)."""
    out = subprocess.run([sys.executable, "-c", FORKED_INCREMENTS, str(tmp_path / "s")], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("]")[-1].strip() == "2001" and out.stdout.startswith("[0, 0, 0, 0]")
