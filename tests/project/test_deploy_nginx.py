"""deploy/nginx.conf as nginx itself reads it (``nginx -t``), in the two places it is meant for.

* Inside a distribution's nginx.conf (Debian 12's, nginx 1.22, whose ``http`` block already
  sets ``ssl_protocols`` and ``ssl_prefer_server_ciphers``): what a systemd deployment on a
  Debian host includes from ``/etc/nginx/conf.d/``.
* Inside a minimal ``http`` block like the official ``nginx`` image's (compose.yaml's proxy).

The upstreams' compose names (``webhook``, ``web``, ``console``) only resolve on the compose
network: the copy points them at 127.0.0.1, and at a certificate made for the test. nginx is a
Debian package that ``.ci/run`` installs with Chromium.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)
DEBIAN_CONF = Path("/etc/nginx/nginx.conf")

pytestmark = pytest.mark.skipif(NGINX is None, reason="no nginx (.ci/run installs it)")

# The official image's nginx.conf, less its user and paths.
MINIMAL = """\
worker_processes auto;
events { worker_connections 1024; }
http {
    include MIME;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
    include CONFD/*.conf;
}
"""


def _certificate(into: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bot.example.fr")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    into.mkdir()
    (into / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (into / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _site(tmp: Path) -> Path:
    """deploy/nginx.conf, its upstreams on 127.0.0.1 and its certificates in ``tmp``."""
    text = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    text, upstreams = re.subn(r"server (webhook|web|console):(\d+)", r"server 127.0.0.1:\2", text)
    assert upstreams >= 3, "the three upstreams of compose.yaml"
    text = text.replace("/etc/nginx/certs/", f"{tmp}/certs/")
    _certificate(tmp / "certs")
    confd = tmp / "conf.d"
    confd.mkdir()
    (confd / "cnrbot.conf").write_text(text, encoding="utf-8")
    return confd


def _check(conf: Path, tmp: Path) -> str:
    assert NGINX is not None
    done = subprocess.run(
        [NGINX, "-t", "-e", str(tmp / "error.log"), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    return said


def _mime() -> str:
    return "/etc/nginx/mime.types" if Path("/etc/nginx/mime.types").exists() else "/dev/null"


@pytest.mark.skipif(not DEBIAN_CONF.exists(), reason="no distribution nginx.conf")
def test_the_site_loads_in_a_distributions_nginx_conf(tmp_path: Path) -> None:
    confd = _site(tmp_path)
    main = DEBIAN_CONF.read_text(encoding="utf-8")
    # Debian's http block sets TLS protocols itself: the site must not repeat them at http level
    assert "include /etc/nginx/conf.d/*.conf;" in main
    main = main.replace("include /etc/nginx/conf.d/*.conf;", f"include {confd}/*.conf;")
    main = re.sub(r"^\s*include /etc/nginx/sites-enabled/\*;\s*$", "", main, flags=re.M)
    main = re.sub(r"^\s*(pid|user)\s[^;]*;", "", main, flags=re.M)
    main = f"pid {tmp_path}/nginx.pid;\n" + main
    conf = tmp_path / "nginx.conf"
    conf.write_text(main, encoding="utf-8")
    said = _check(conf, tmp_path)
    assert "[warn]" not in said and "[emerg]" not in said, said


def test_the_site_loads_in_a_minimal_http_block(tmp_path: Path) -> None:
    confd = _site(tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        + MINIMAL.replace("MIME", _mime()).replace("CONFD", str(confd)),
        encoding="utf-8",
    )
    said = _check(conf, tmp_path)
    assert "[emerg]" not in said, said


def test_a_broken_site_is_refused(tmp_path: Path) -> None:
    """The check itself fails on what nginx refuses (here, a directive twice in one block)."""
    confd = _site(tmp_path)
    site = confd / "cnrbot.conf"
    site.write_text(
        site.read_text(encoding="utf-8").replace(
            "ssl_session_timeout 1d;", "ssl_session_timeout 1d;\nssl_session_timeout 1d;", 1
        ),
        encoding="utf-8",
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        + MINIMAL.replace("MIME", _mime()).replace("CONFD", str(confd)),
        encoding="utf-8",
    )
    with pytest.raises(AssertionError, match="duplicate"):
        _check(conf, tmp_path)
