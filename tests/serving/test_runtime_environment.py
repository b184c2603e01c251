"""What another interpreter needs to serve: our packages on PYTHONPATH and nothing else at import time;
and a signed download URL that plain urllib can fetch from the local stack's S3 (moto's server)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from tt_serve.targets import is_current_interpreter, runtime_environment, source_roots


def test_the_serving_modules_import_in_a_bare_interpreter(tmp_path: Path) -> None:
    bare = shutil.which("python3") or sys.executable
    env = runtime_environment(str(tmp_path / "other-python"))  # another interpreter: our code on its path
    assert env["PYTHONPATH"].split(os.pathsep)[: len(source_roots())] == source_roots()
    script = (
        "import sys; sys.path = [p for p in sys.path if 'site-packages' not in p]\n"
        "import tt_serve.server, tt_serve.export, tt_serve.managed\n"
        "heavy = ('torch', 'transformers', 'peft', 'pydantic', 'requests', 'boto3')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([bare, "-S", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert is_current_interpreter(sys.executable) and not is_current_interpreter(str(tmp_path / "python"))
    assert runtime_environment(sys.executable).get("PYTHONPATH") == os.environ.get("PYTHONPATH")


def test_a_signed_download_url_of_the_local_stack_works_with_urllib(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from botocore.config import Config
    from moto.server import ThreadedMotoServer

    from tt_core.adapters.s3 import S3DownloadSigner

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        session = boto3.session.Session()
        s3 = session.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        s3.put_object(Bucket="artifacts", Key="accounts/a/models/m/model.tar.gz", Body=b"model bytes")
        signing = session.client("s3", region_name="us-east-1", config=Config(signature_version="s3v4"))
        url = S3DownloadSigner(signing, "artifacts").presign_get(
            "accounts/a/models/m/model.tar.gz", timedelta(minutes=15), "model.tar.gz"
        )
        assert url.startswith(f"http://{host}:{port}/") and "X-Amz-Expires=900" in url
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == b"model bytes"
            assert response.headers["Content-Disposition"] == 'attachment; filename="model.tar.gz"'
    finally:
        server.stop()
