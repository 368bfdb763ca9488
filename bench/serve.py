"""Latency of `framegram serve`: upload of a 10-s clip to the rendered result, beside the CLI's search.

Index: the search benchmark's 200 references (2.17 h; bench/search_corpus.py, framegrams from the
cache), built once into the corpus's run folder. Clips: 20 of its 10-s test queries with a source
(every 18th: one distortion after another). For each clip, in this order:

  page        Playwright driving Debian's chromium: choose the file on the search page, submit, until
              the results page is shown (upload, extraction, search, frame strips, rendering)
  api         POST /api/search from Python (httpx): upload, extraction, search, JSON
  search()    `framegram.search.search` in this process: extraction and search, no upload
  cli         `framegram search CLIP --index DIR --json` as a fresh process (Python's start included)

    .venv/bin/python bench/serve.py

Writes bench/results/serve.json.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, write_result  # noqa: E402
from search_corpus import build_search_corpus, default_corpus_folder  # noqa: E402

from framegram.cache import framegram_for  # noqa: E402
from framegram.search import VideoIndex, search  # noqa: E402
from framegram.search.basis import default_basis  # noqa: E402
from framegram.serve import create_app  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "serve.json"
CLIPS = 20


def main() -> None:
    import httpx
    import uvicorn
    from playwright.sync_api import sync_playwright

    corpus = build_search_corpus(default_corpus_folder(), workers=2)
    folder = corpus.folder / "run" / "serve-index"
    if not (folder / "index.sqlite").exists():
        shutil.rmtree(folder, ignore_errors=True)
        index = VideoIndex.create(folder, default_basis())
        index.add(((r.ref_id, framegram_for(r.path)[0]) for r in corpus.references), commit_every=100)
    index = VideoIndex.open(folder)
    clips = [q for q in corpus.test_queries if q.length == 10.0 and q.ref_id is not None][::18][:CLIPS]

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(folder), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    times: dict[str, list[float]] = {"page": [], "api": [], "search()": [], "cli": []}
    right = {"page": 0, "api": 0, "search()": 0, "cli": 0}
    chromium = shutil.which("chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(base + "/")  # warm: the first page load and the server's first request
        for q in clips:
            page.goto(base + "/")
            page.set_input_files("#clip", str(q.path))
            t = time.perf_counter()
            page.click("button[type=submit]")
            page.wait_for_selector("h1:has-text('Matches for')", timeout=120_000)
            times["page"].append(time.perf_counter() - t)
            refs = page.locator("li.match .ref").all_inner_texts()
            right["page"] += bool(refs) and refs[0] == q.ref_id

            t = time.perf_counter()
            with q.path.open("rb") as f:
                answer = httpx.post(base + "/api/search", files={"clip": (q.path.name, f, "video/mp4")}, timeout=120).json()
            times["api"].append(time.perf_counter() - t)
            right["api"] += bool(answer) and answer[0]["ref_id"] == q.ref_id

            t = time.perf_counter()
            found = search(q.path, index)
            times["search()"].append(time.perf_counter() - t)
            right["search()"] += bool(found) and found[0].ref_id == q.ref_id

            t = time.perf_counter()
            cli = subprocess.run([sys.executable, "-m", "framegram", "search", str(q.path), "--index", str(folder), "--json"],
                                 capture_output=True, text=True, check=True)
            times["cli"].append(time.perf_counter() - t)
            out = json.loads(cli.stdout)
            right["cli"] += bool(out) and out[0]["ref_id"] == q.ref_id
        browser.close()
    server.should_exit = True

    report = {"index": {"videos": len(index), "seconds": index.total_rows}, "clips": len(clips),
              "distortions": sorted({q.distortion for q in clips}),
              "methods": {m: {"p50_s": float(np.percentile(v, 50)), "p95_s": float(np.percentile(v, 95)),
                              "top1_right": right[m]} for m, v in times.items()}}
    write_result(RESULTS, report)
    print(f"\n{len(clips)} clips of 10 s, index of {len(index)} videos ({index.total_rows / 3600:.2f} h)\n")
    print(markdown_table(["path", "p50 s", "p95 s", "right video first"],
                         [[m, f"{r['p50_s']:.2f}", f"{r['p95_s']:.2f}", f"{r['top1_right']}/{len(clips)}"]
                          for m, r in report["methods"].items()]))


if __name__ == "__main__":
    main()
