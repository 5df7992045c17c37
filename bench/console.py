#!/usr/bin/env python3
"""Times the web console's lists at scale in headless Chromium.

Loads N agent instances, each with its card manifest, through
`agentry import`, starts `agentry serve --console-dev-signin` on the loaded
folder, signs the console in, and for each view opens it afresh and reports
the time from the start of navigation to the first row shown (the
`performance.now()` of the page, read every 10 ms over WebDriver).

    bench/console.py --agentry target/release/agentry --agents 100000

Needs Debian's chromium and chromium-driver (tests/run.sh installs them).
Python's standard library only.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TENANT = "c0ffee00-0000-4000-8000-000000000001"
WORDS = ["Security", "Travel", "Invoice", "Support", "Sales", "Planner", "Helper", "Analyst",
         "Research", "Finance", "Legal", "Ops", "Data", "Code", "Review", "Triage"]
VIEWS = [
    "#/agents",
    "#/agents?sort=modified",
    "#/agents?q=travel",
    "#/agents?owner=owner-7",
    "#/agents?tag=tag-3",
    "#/agents?top=100",
    "#/manifests",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def export_file(path, n):
    """An `agentry export` stream of n instances, each linking its manifest."""
    stamp = "2026-01-01T00:00:00Z"
    with open(path, "w") as out:
        out.write(json.dumps({"type": "header", "format": "agentry-export", "version": 1}) + "\n")
        for i in range(n):
            out.write(json.dumps({"type": "manifest", "tenant": TENANT, "data": {
                "id": f"m-{i:07d}", "displayName": f"{WORDS[i % 16]} agent {i}",
                "description": f"Does {WORDS[(i * 7) % 16].lower()} work number {i}",
                "version": "1.0.0", "ownerIds": [], "createdDateTime": stamp,
                "lastModifiedDateTime": stamp, "defaultInputModes": ["text/plain"],
                "defaultOutputModes": ["text/plain"], "capabilities": {},
                "skills": [{"id": f"skill-{i % 10}", "displayName": f"Skill {i % 10}",
                            "description": "A skill", "tags": [f"tag-{i % 10}"]}],
            }}) + "\n")
        for i in range(n):
            out.write(json.dumps({"type": "instance", "tenant": TENANT, "manifestId": f"m-{i:07d}", "data": {
                "id": f"a-{i:07d}", "displayName": f"{WORDS[i % 16]} agent {i}",
                "ownerIds": [f"owner-{i % 100}"], "createdDateTime": stamp,
                "lastModifiedDateTime": stamp, "url": f"https://agents.example/{i}",
            }}) + "\n")
        out.write(json.dumps({"type": "trailer", "records": 2 * n}) + "\n")


class WebDriver:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["chromedriver", f"--port={self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 15
        while True:
            try:
                self.call("GET", "/status")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"]
        self.session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": {"args": args}}}})["sessionId"]

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method, data=data,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as res:
            return json.load(res)["value"]

    def open(self, url):
        self.call("POST", f"/session/{self.session}/url", {"url": url})

    def script(self, code):
        return self.call("POST", f"/session/{self.session}/execute/sync", {"script": code, "args": []})

    def wait(self, code, seconds=30, every=0.01):
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = self.script(code)
            if value:
                return value
            time.sleep(every)
        raise TimeoutError(code)

    def close(self):
        try:
            self.call("DELETE", f"/session/{self.session}")
        finally:
            self.proc.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agentry", default="target/release/agentry")
    parser.add_argument("--agents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("chromedriver"):
        sys.exit("chromedriver is missing: install Debian's chromium and chromium-driver")
    scratch = tempfile.mkdtemp(prefix="agentry-console-bench-")
    server = None
    driver = None
    try:
        data = os.path.join(scratch, "data")
        stream = os.path.join(scratch, "export.jsonl")
        export_file(stream, args.agents)
        started = time.time()
        subprocess.run([args.agentry, "import", "--data-dir", data, "--input", stream],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"loaded {args.agents} agents with their manifests in {time.time() - started:.1f} s")
        origin = f"http://127.0.0.1:{free_port()}"
        server = subprocess.Popen([args.agentry, "serve", "--data-dir", data, "--console-dev-signin",
                                   "--listen", origin.removeprefix("http://")],
                                  env={**os.environ, "RUST_LOG": "warn"},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        driver = WebDriver()
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(origin + "/healthz")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        driver.open(origin + "/console/")
        driver.wait("return document.getElementById('dev-signin');")
        driver.script("document.getElementById('dev-signin').click();")
        driver.wait("return document.querySelector('main tbody tr');")
        print(f"| view | first rows shown (ms, median of {args.runs}) | runs (ms) | count |")
        print("|---|---:|---|---|")
        for view in VIEWS:
            times = []
            count = ""
            for _ in range(args.runs):
                driver.open("about:blank")
                driver.open(f"{origin}/console/{view}")
                times.append(round(driver.wait(
                    "return document.querySelector('main tbody tr') ? performance.now() : null;")))
                count = driver.script(
                    "const e = document.querySelector('#agent-count, #manifests-count'); return e ? e.textContent : '';")
            print(f"| `{view}` | {statistics.median(times)} | {', '.join(map(str, times))} | {count} |")
    finally:
        if driver:
            driver.close()
        if server:
            server.terminate()
            server.wait()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
