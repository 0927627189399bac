"""schemathesis against the real server: requests generated from /openapi.json (valid ones and invalid ones),
sent over loopback to `python -m engine serve`; no request may get a 5xx, and every answer must have a status,
a content type and a body the description allows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .server_process import Server

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_no_generated_request_gets_a_server_error(tmp_path):
    schemathesis = Path(sys.executable).parent / "schemathesis"  # installed beside this Python (the dev extra)
    with Server("--store", "memory", "--seed", "1", "--rate", "50", "--token", "t0ken") as server:
        result = subprocess.run(
            [str(schemathesis), "run", server.url + "openapi.json",
             "--checks", CHECKS, "--max-examples", "60", "--seed", "1", "--mode", "all",
             "--generation-database", "none", "--request-timeout", "10", "--suppress-health-check", "all",
             "-H", "Authorization: Bearer t0ken"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Traceback" not in server.stderr, server.stderr[-4000:]
