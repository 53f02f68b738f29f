"""Concurrency through a real multi-process server: gunicorn with 4 workers on the test
database (SQLite file or PostgreSQL), many clients at once. The hard caps (sentinel
stagger, cohort capacity) hold across processes, not only across threads of one."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

from tests.builders import at, days_ago, eligible_screening, enrol, world
from trialmgr import ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(app, tmp_path, workers=4):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": "multiprocess-test-secret-0123456789abcdef",
        "TRIALMGR_INSTANCE": str(tmp_path / "gunicorn-instance"),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--timeout",
            "60",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # generous: on a loaded 2-core machine four workers importing the app take a while
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()  # stderr reaches its end only once the server is gone
                    _, err = proc.communicate(timeout=20)
                    raise RuntimeError(err.decode()[-2000:]) from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        # the workers exit at once; on a loaded machine gunicorn's master alone has taken
        # over 20 s to follow them
        proc.wait(timeout=90)


def _post(base, path, token, body):
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _at_once(calls):
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_hard_caps_hold_across_processes(app, api, tmp_path):
    """8 parallel dosings of one cohort: exactly one passes the sentinel stagger; 12 parallel
    enrolments into another cohort of 3: exactly 3 enrolled; no 5xx."""
    w = world(api, capacities=(8, 3, 3))
    coord, trial = w["coord"], w["trial"]
    subjects = [enrol(coord, trial, w["site"]) for _ in range(8)]
    screenings = [eligible_screening(coord, trial, w["site"]) for _ in range(12)]
    enrol_body = {
        "cohort_id": trial["cohorts"][1]["id"],
        "consent_version_id": trial["consent_versions"][0]["id"],
        "consented_on": days_ago(290).isoformat(),
    }
    dosing = {"dosed_at": at(days_ago(5)), "dose": "1e13", "lot_number": "L1"}
    with gunicorn(app, tmp_path) as base:
        dosed = _at_once(
            [
                lambda s=s: _post(base, f"/subjects/{s['code']}/dosing", coord.token, dosing)
                for s in subjects
            ]
        )
        enrolled = _at_once(
            [
                lambda s=s: _post(
                    base, "/subjects", coord.token, {**enrol_body, "screening_id": s["id"]}
                )
                for s in screenings
            ]
        )
    assert sorted(dosed) == [201] + [409] * 7, dosed
    assert len([s for s in coord.get("/subjects").json if s["dosing"]]) == 1
    assert sorted(enrolled) == [201] * 3 + [409] * 9, enrolled
    assert len(coord.get(f"/subjects?cohort_id={enrol_body['cohort_id']}").json) == 3
