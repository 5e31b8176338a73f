#!/usr/bin/env python3
"""End-to-end check of the runner's HTML report (`GET /runs/{id}/report`), standard library only.

1. Seeds a run through the HTTP API: `/bridge/start` with an objective, then ~30 rounds of `/propose` and
   `/bridge/record` on a small function of three parameters of mixed types (float, log-float, categorical),
   with a few trials reported as failed.
2. Fetches the report and checks it is a self-contained HTML page (no external scripts, styles, images or
   links) that escapes what it shows.
3. Renders it in headless Chromium to a PNG and checks, by decoding the PNG with zlib, that the plots were
   drawn: the best-so-far line spans the history plot, one blob per plotted trial, and parallel-coordinate
   lines in the ramp's colours spread across the page below it.

Usage: report_screenshot.py --url http://127.0.0.1:PORT --out .cache/report/report.png [--chromium PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zlib

RUN_ID = "report-e2e-<run>&'\""
SPACE = {
    "x": {"uniform": [-3.0, 3.0]},
    "lr": {"loguniform": [1e-5, 1e-1]},
    "act": {"choice": ["relu", "gelu", "tanh"]},
}
ACT_PENALTY = {"relu": 0.0, "gelu": 0.15, "tanh": 0.4}
ROUNDS = 30
WINDOW = (1400, 2000)


def fail(message: str) -> None:
    print(f"report check FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def call(base: str, method: str, path: str, body: object | None = None) -> tuple[int, dict, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def call_json(base: str, method: str, path: str, body: object | None = None) -> object:
    status, _, raw = call(base, method, path, body)
    if status >= 300:
        fail(f"{method} {path} answered {status}: {raw[:300]!r}")
    return json.loads(raw)


def loss(params: dict) -> float:
    """A smooth bowl in x and log10(lr), plus a penalty per activation."""
    x = float(params["x"])
    lr = float(params["lr"])
    return (x - 1.0) ** 2 + 0.3 * (math.log10(lr) + 3.0) ** 2 + ACT_PENALTY[params["act"]]


def seed(base: str) -> str:
    start = {"run_id": RUN_ID, "objective": {"metric": "loss", "direction": "minimize"}, "search_space": SPACE}
    call_json(base, "POST", "/bridge/start", start)
    for i in range(ROUNDS):
        proposals = call_json(base, "POST", "/propose", {"run_id": RUN_ID, "k": 1, "space": SPACE, "seed": i})
        if not isinstance(proposals, list) or len(proposals) != 1:
            fail(f"/propose answered {proposals!r}")
        params = proposals[0]["params"]
        trial = {"run_id": RUN_ID, "trial_id": f"t{i:02d}<{i}>", "parameters": params, "duration_ms": 40 + i}
        if i % 9 == 4:
            trial.update(status="failed", metrics={})
        else:
            trial.update(status="succeeded", metrics={"loss": round(loss(params), 6)})
        call_json(base, "POST", "/bridge/record", trial)
    return RUN_ID


def check_html(html: str) -> None:
    lowered = html.lower()
    external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", lowered)
    if external:
        fail(f"the report references external resources: {external[:5]}")
    for needle in ("<script", "<link", "<iframe", "<img", "@import"):
        if needle in lowered:
            fail(f"the report contains {needle}")
    if "<svg" not in lowered:
        fail("the report has no inline <svg>")
    if "report-e2e-&lt;run&gt;&amp;" not in html:
        fail("the run id is not escaped as expected")
    if html.count("<polyline ") != ROUNDS:
        fail(f"expected {ROUNDS} parallel-coordinate lines, found {html.count('<polyline ')}")


def screenshot(chromium: str, url: str, out: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if os.path.exists(out):
        os.remove(out)
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={os.path.abspath(out)}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            url,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if result.returncode != 0 or not os.path.exists(out):
        fail(f"chromium exited {result.returncode} without a screenshot:\n{result.stderr[-2000:]}")


def decode_png(path: str) -> tuple[int, int, list[bytearray]]:
    """Decodes an 8-bit, non-interlaced RGB or RGBA PNG into rows of RGB bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("the screenshot is not a PNG")
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        fail("the PNG has no header")
    width, height, depth, color_type, _, _, interlace = header
    channels = {2: 3, 6: 4}.get(color_type)
    if depth != 8 or channels is None or interlace != 0:
        fail(f"unsupported PNG layout: depth {depth}, colour type {color_type}, interlace {interlace}")
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        base = y * (stride + 1)
        kind = raw[base]
        line = bytearray(raw[base + 1 : base + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                line[i] = (line[i] + predictor) & 0xFF
        previous = line
        if channels == 4:
            rgb = bytearray(width * 3)
            rgb[0::3], rgb[1::3], rgb[2::3] = line[0::4], line[1::4], line[2::4]
            rows.append(rgb)
        else:
            rows.append(line)
    return width, height, rows


RAMP = [
    (0x44, 0x01, 0x54), (0x48, 0x28, 0x78), (0x3E, 0x49, 0x89), (0x31, 0x68, 0x8E), (0x26, 0x82, 0x8E),
    (0x1F, 0x9E, 0x89), (0x35, 0xB7, 0x79), (0x6E, 0xCE, 0x58), (0xB5, 0xDE, 0x2B), (0xFD, 0xE7, 0x25),
]


def ramp_palette() -> list[tuple[float, float, float]]:
    """The ramp's colours, finely interpolated, as drawn over white at the lines' opacity and fully."""
    colours = []
    for k in range(64):
        t = k / 63 * (len(RAMP) - 1)
        i = min(int(t), len(RAMP) - 2)
        f = t - i
        c = [RAMP[i][j] + (RAMP[i + 1][j] - RAMP[i][j]) * f for j in range(3)]
        for alpha in (1.0, 0.8):
            colours.append(tuple(alpha * v + (1 - alpha) * 255 for v in c))
    return colours


def components(pixels: set[tuple[int, int]]) -> list[set[tuple[int, int]]]:
    """Groups pixels into 8-connected blobs."""
    seen: set[tuple[int, int]] = set()
    blobs = []
    for start in pixels:
        if start in seen:
            continue
        blob, stack = set(), [start]
        seen.add(start)
        while stack:
            x, y = stack.pop()
            blob.add((x, y))
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    n = (x + dx, y + dy)
                    if n in pixels and n not in seen:
                        seen.add(n)
                        stack.append(n)
        blobs.append(blob)
    return blobs


def check_png(path: str, plotted_trials: int) -> dict:
    width, height, rows = decode_png(path)
    orange: list[tuple[int, int]] = []
    blue: set[tuple[int, int]] = set()
    coloured: list[tuple[int, int, int, int, int]] = []
    for y, row in enumerate(rows):
        for x in range(width):
            r, g, b = row[3 * x], row[3 * x + 1], row[3 * x + 2]
            if max(r, g, b) - min(r, g, b) < 40:
                continue
            coloured.append((x, y, r, g, b))
            if r >= 220 and 100 <= g <= 160 and b <= 70:
                orange.append((x, y))
            elif b >= 150 and b - r >= 60 and b - g >= 25 and r <= 110:
                blue.add((x, y))
    if not orange:
        fail("no best-so-far line (orange) in the screenshot")
    # The history plot: the best-so-far line must span most of its width.
    line_xs = [x for x, _ in orange]
    span = max(line_xs) - min(line_xs)
    if span < 400:
        fail(f"the best-so-far line spans only {span} px")
    # Trial points: point-sized blue blobs between the legend (top of the orange pixels) and the plot's bottom.
    history_top = min(y for _, y in orange)
    history_bottom = max(y for _, y in orange) + 40
    in_plot = {(x, y) for x, y in blue if history_top <= y <= history_bottom}
    blobs = [b for b in components(in_plot) if 15 <= len(b) <= 120]
    # One per succeeded trial but the best (drawn orange), plus the legend's sample; points that overlap merge.
    if not (0.7 * plotted_trials <= len(blobs) <= plotted_trials + 1):
        fail(f"found {len(blobs)} trial points in the history plot, expected about {plotted_trials}")
    palette = ramp_palette()
    ramp_pixels = 0
    ramp_columns: set[int] = set()
    for x, y, r, g, b in coloured:
        if y <= history_bottom:
            continue
        if min((r - c[0]) ** 2 + (g - c[1]) ** 2 + (b - c[2]) ** 2 for c in palette) <= 35**2:
            ramp_pixels += 1
            ramp_columns.add(x)
    if ramp_pixels < 2000 or len(ramp_columns) < 400:
        fail(f"parallel-coordinate lines missing: {ramp_pixels} ramp pixels over {len(ramp_columns)} columns")
    return {
        "size": f"{width}x{height}",
        "coloured_pixels": len(coloured),
        "best_line_span_px": span,
        "point_blobs": len(blobs),
        "ramp_pixels": ramp_pixels,
        "ramp_columns": len(ramp_columns),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="runner base URL")
    parser.add_argument("--out", required=True, help="where to write the screenshot")
    parser.add_argument("--chromium", default="chromium")
    args = parser.parse_args()
    base = args.url.rstrip("/")

    run_id = seed(base)
    path = "/runs/" + urllib.request.quote(run_id, safe="") + "/report"
    status, headers, raw = call(base, "GET", path)
    if status != 200:
        fail(f"GET {path} answered {status}: {raw[:300]!r}")
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    if not content_type.startswith("text/html"):
        fail(f"the report's content type is {content_type!r}")
    html = raw.decode("utf-8")
    check_html(html)
    status, _, _ = call(base, "GET", "/runs/no-such-run/report")
    if status != 404:
        fail(f"an unknown run's report answered {status}, expected 404")

    screenshot(args.chromium, base + path, args.out)
    run = call_json(base, "GET", "/runs/" + urllib.request.quote(run_id, safe=""))
    plotted = run.get("trial_counts", {}).get("succeeded", 0)
    stats = check_png(args.out, plotted)
    print(json.dumps({"report_bytes": len(raw), "succeeded_trials": plotted, **stats}))
    print(f"screenshot: {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
