"""HTTP helpers for the scale-out suite: real requests against a running deployment (no test client).

- ``WebClient``: a ``requests.Session`` (cookies: anonymous, or signed in through the real /login
  form). ``get(path, worker=PID)`` is answered by that gunicorn worker: the request is sent on fresh
  connections until the ``X-Nanoorg-Worker-Pid`` response header names it (reads only).
- ``worker_pids(url, n)``: the pids of the deployment's n web workers; ``free_ports(n, start)``.
- ``WebClient.callback(input_id, prop, value, state)``: a Dash callback POST, found by its input in
  /_dash-dependencies (as the renderer does it), with the CSRF header.
- ``WebClient.upload(paths)``: the browser's chunked upload (/upload/start, /upload/chunk), -> upload id.
- ``WebClient.start_background(...)`` / ``poll_background(job)``: a Dash background callback as the
  renderer runs it: the first POST answers signed job handles (bound to the page load's ``endId``),
  the polls answer ``progress`` until the result (``BackgroundJob``).
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

import requests

PID_HEADER = "X-Nanoorg-Worker-Pid"
TRIES = 100


class WebClient:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.username: str | None = None          # once signed in
        self._dependencies = None

    def get(self, path: str, *, worker: int | None = None, **kwargs) -> requests.Response:
        for _ in range(TRIES if worker else 1):
            response = self.session.get(self.base_url + path, timeout=60, **kwargs)
            if worker is None or int(response.headers[PID_HEADER]) == worker:
                return response
            self.session.close()          # next request on a new connection, maybe to the other worker
        raise AssertionError(f"web worker {worker} did not answer {path} in {TRIES} connections")

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(self.base_url + path, timeout=60, **kwargs)

    def _form(self, path: str, **fields) -> None:
        page = self.get(path)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        response = self.post(path, data=dict(fields, csrf_token=token), allow_redirects=False)
        assert response.status_code == 302, f"{path} as {fields.get('username')} failed: {response.status_code}"

    def login(self, username: str, password: str) -> "WebClient":
        self._form("/login", username=username, password=password)
        self.username = username
        return self

    def register(self, username: str, password: str) -> "WebClient":
        """A new account through the Register form (signed in afterwards)."""
        self._form("/register", username=username, email=f"{username}@example.org", password=password,
                   password2=password)
        self.username = username
        return self

    def csrf(self) -> str:
        if "_csrf_token" not in self.session.cookies:
            self.get("/")
        return self.session.cookies["_csrf_token"]

    def _callback_body(self, input_id: str, prop: str, value, state: dict | None, output: str = "") -> dict:
        if self._dependencies is None:
            self._dependencies = self.get("/_dash-dependencies").json()
        spec = next(c for c in self._dependencies
                    if {"id": input_id, "property": prop} in c["inputs"] and not c.get("clientside_function")
                    and output in c["output"])
        outputs = []
        for part in spec["output"].strip(".").split("..."):
            component, _, prop_name = part.partition(".")
            outputs.append({"id": component, "property": prop_name.split("@")[0]})
        values = {**(state or {}), f"{input_id}.{prop}": value}
        return {
            "output": spec["output"],
            "outputs": outputs if spec["output"].startswith("..") else outputs[0],
            "inputs": [{**i, "value": values.get(f"{i['id']}.{i['property']}")} for i in spec["inputs"]],
            "state": [{**s, "value": values.get(f"{s['id']}.{s['property']}")} for s in spec["state"]],
            "changedPropIds": [f"{input_id}.{prop}"],
        }

    def callback(self, input_id: str, prop: str, value, state: dict | None = None, params=None,
                 output: str = "") -> requests.Response:
        """Fire the callback triggered by ``input_id.prop`` (whose outputs contain ``output``);
        ``state``: {"id.prop": value} for its other inputs and states."""
        body = self._callback_body(input_id, prop, value, state, output)
        return self.post("/_dash-update-component", json=body, params=params, headers={"X-CSRFToken": self.csrf()})

    # ---- uploads and background callbacks

    def upload(self, paths: list[Path], chunk_bytes: int = 256 * 1024) -> str:
        """Send ``paths`` as the browser does (in chunks); returns the upload id."""
        headers = {"X-CSRFToken": self.csrf()}
        upload_id = self.post("/upload/start", headers=headers).json()["upload_id"]
        for index, path in enumerate(paths):
            data = path.read_bytes()
            for offset in range(0, max(len(data), 1), chunk_bytes):
                chunk = data[offset:offset + chunk_bytes]
                last = int(offset + chunk_bytes >= len(data))
                response = self.post(f"/upload/chunk/{upload_id}", data=chunk, headers=headers, params=dict(
                    index=index, offset=offset, size=len(data), last=last, name=path.name))
                assert response.status_code == 200, response.text
        return upload_id

    def page_end_id(self) -> str:
        """The server-signed token of one page load (Dash binds background job handles to it)."""
        page = self.get("/")
        config = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>', page.text, re.S)
        return json.loads(config.group(1))["end_id"]

    def start_background(self, input_id: str, prop: str, value, state: dict | None = None) -> "BackgroundJob":
        job = BackgroundJob(self, self._callback_body(input_id, prop, value, state), self.page_end_id())
        response = self.post("/_dash-update-component", params={"endId": job.end_id}, json=job.body,
                             headers={"X-CSRFToken": self.csrf()})
        assert response.status_code in (200, 202), response.text
        handles = response.json()
        job.cache_key, job.job = handles["cacheKey"], handles["job"]
        return job


@dataclass
class BackgroundJob:
    """A running Dash background callback; ``poll()`` -> (progress dict or None, result or None)."""
    client: WebClient
    body: dict
    end_id: str
    cache_key: str = ""
    job: str = ""
    progress: list = field(default_factory=list)      # every progress update seen, in order

    def cancel(self, cancel_input_id: str, output: str = "") -> None:
        """Press the job's Cancel button (Dash's cancel callback, with the signed job handle; ``output``
        picks it when the button has other callbacks too: ``<button id>.id``)."""
        response = self.client.callback(cancel_input_id, "n_clicks", 1, output=output,
                                        params={"endId": self.end_id, "cancelJob": self.job})
        assert response.status_code in (200, 204), response.text

    def poll(self):
        params = {"endId": self.end_id, "cacheKey": self.cache_key, "job": self.job}
        body = {**self.body, "inputs": [{**i, "value": None} for i in self.body["inputs"]],
                "state": [{**s, "value": None} for s in self.body["state"]]}
        response = self.client.post("/_dash-update-component", params=params, json=body,
                                    headers={"X-CSRFToken": self.client.csrf()})
        if response.status_code == 204:                # nothing to update: ended without output
            return None, {}
        assert response.status_code in (200, 202), response.text
        answer = response.json()
        if answer.get("progress"):
            self.progress.append(answer["progress"])
        return answer.get("progress"), answer.get("response")


def worker_pids(base_url: str, workers: int) -> list[int]:
    """The pids of the ``workers`` web workers (fresh connections until each has answered)."""
    seen = set()
    for _ in range(TRIES):
        seen.add(requests.get(base_url + "/healthz", timeout=60).json()["pid"])
        if len(seen) == workers:
            return sorted(seen)
    raise AssertionError(f"only {len(seen)} of {workers} web workers answered in {TRIES} connections")


def free_ports(count: int, start: int) -> list[int]:
    """``count`` local TCP ports, from ``start`` upwards, that nothing listens on now."""
    ports, port = [], start
    while len(ports) < count:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                ports.append(port)
            except OSError:
                pass
        port += 1
    return ports
