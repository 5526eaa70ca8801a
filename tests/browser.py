"""Open a page in headless Chromium and report what a reader would see: images loaded, console errors, a screenshot.

Drives Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages ended by NUL on file
descriptors 3 and 4), so it needs nothing but the browser and the standard library."""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """The first Chromium-like executable on PATH, or None."""
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _high(fd: int) -> int:
    """fd moved to a number >= 10 (so that the child's 3 and 4 can be made from it)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class _Pipe:
    def __init__(self, exe: str, profile: str):
        to_chrome_r, self.w = os.pipe()
        self.r, from_chrome_w = os.pipe()
        to_chrome_r, from_chrome_w = (_high(fd) for fd in (to_chrome_r, from_chrome_w))   # not 3 or 4 themselves
        args = [exe, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--window-size=1280,900", f"--user-data-dir={profile}", "about:blank"]
        shell = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
        self.proc = subprocess.Popen(["bash", "-c", shell, *args], pass_fds=(to_chrome_r, from_chrome_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r), os.close(from_chrome_w)
        self.buf, self.next_id, self.events = b"", 0, []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read(deadline))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (OSError, RuntimeError, TimeoutError):
            pass
        os.close(self.w), os.close(self.r)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def open_page(path: Path, screenshot: Path, exe: str | None = None, timeout: float = 60) -> dict:
    """Load `path` (a local HTML file); return {"images": [(src, naturalWidth)], "errors": [text], "title": str}
    and write a PNG screenshot of the first screen to `screenshot`."""
    exe = exe or find_browser()
    if exe is None:
        raise FileNotFoundError("no Chromium on PATH")
    with tempfile.TemporaryDirectory() as profile:
        pipe = _Pipe(exe, profile)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                pipe.call(f"{domain}.enable", session=session)
            pipe.call("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
            pipe.wait_for("Page.loadEventFired", timeout)
            expr = "JSON.stringify([document.title, Array.from(document.images).map(i => [i.getAttribute('src'), " \
                   "i.complete ? i.naturalWidth : 0])])"
            value = pipe.call("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                              session=session)["result"]["value"]
            title, images = json.loads(value)
            shot = pipe.call("Page.captureScreenshot", {"format": "png"}, session=session, timeout=timeout)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            errors = []
            for e in pipe.events:
                p = e.get("params", {})
                if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
                elif e.get("method") == "Runtime.exceptionThrown":
                    errors.append(p.get("exceptionDetails", {}).get("text", "exception"))
                elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    entry = p["entry"]
                    errors.append(f"{entry.get('text', '')} {entry.get('url', '')}".strip())
            return {"title": title, "images": [tuple(i) for i in images], "errors": errors}
        finally:
            pipe.close()
