"""HTTP helpers for the scale-out suite: real requests against a running deployment (no test client).

- ``WebClient``: a ``requests.Session`` (cookies: anonymous, or signed in through the real /login
  form). ``get(path, worker=PID)`` is answered by that gunicorn worker: the request is sent on fresh
  connections until the ``X-Nanoorg-Worker-Pid`` response header names it (reads only).
- ``worker_pids(url, n)``: the pids of the deployment's n web workers.
- ``WebClient.callback(input_id, prop, value, state)``: a Dash callback POST, found by its input in
  /_dash-dependencies (as the renderer does it), with the CSRF header.
"""

from __future__ import annotations

import re

import requests

PID_HEADER = "X-Nanoorg-Worker-Pid"
TRIES = 100


class WebClient:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
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

    def login(self, username: str, password: str) -> "WebClient":
        page = self.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        response = self.post("/login", data=dict(username=username, password=password, csrf_token=token),
                             allow_redirects=False)
        assert response.status_code == 302, f"login as {username} failed: {response.status_code}"
        return self

    def csrf(self) -> str:
        if "_csrf_token" not in self.session.cookies:
            self.get("/")
        return self.session.cookies["_csrf_token"]

    def callback(self, input_id: str, prop: str, value, state: dict | None = None) -> requests.Response:
        """Fire the callback triggered by ``input_id.prop``; ``state``: {"id.prop": value}."""
        if self._dependencies is None:
            self._dependencies = self.get("/_dash-dependencies").json()
        spec = next(c for c in self._dependencies
                    if {"id": input_id, "property": prop} in c["inputs"] and not c.get("clientside_function"))
        outputs = []
        for part in spec["output"].strip(".").split("..."):
            component, _, prop_name = part.partition(".")
            outputs.append({"id": component, "property": prop_name.split("@")[0]})
        state = state or {}
        body = {
            "output": spec["output"],
            "outputs": outputs if spec["output"].startswith("..") else outputs[0],
            "inputs": [{"id": input_id, "property": prop, "value": value}],
            "state": [{**s, "value": state.get(f"{s['id']}.{s['property']}")} for s in spec["state"]],
            "changedPropIds": [f"{input_id}.{prop}"],
        }
        return self.post("/_dash-update-component", json=body, headers={"X-CSRFToken": self.csrf()})


def worker_pids(base_url: str, workers: int) -> list[int]:
    """The pids of the ``workers`` web workers (fresh connections until each has answered)."""
    seen = set()
    for _ in range(TRIES):
        seen.add(requests.get(base_url + "/healthz", timeout=60).json()["pid"])
        if len(seen) == workers:
            return sorted(seen)
    raise AssertionError(f"only {len(seen)} of {workers} web workers answered in {TRIES} connections")
