"""Vendor the French State design system (DSFR) into ``moderation/static/dsfr/``.

    python -m moderation.dsfr_vendor                 # the version pinned in moderation/dsfr.py
    python -m moderation.dsfr_vendor 1.15.4          # another one (then rerun the tests)
    python -m moderation.dsfr_vendor --tarball gouvfr-dsfr-1.15.3.tgz

It runs ``npm pack @gouvfr/dsfr@VERSION`` (the npm registry, nothing installed) and copies out of
the package only what the pages use, keeping the package's ``dist/`` layout so that the
relative ``url()`` of the CSS keep working:

- ``dsfr.min.css`` (every component: the console and the citizen web chat share it) and every
  file it references (the Marianne and Spectral fonts, the icons of the components);
- ``utility/icons/icons.min.css`` cut down to the icons named in ``UTILITY_ICONS`` (the
  ``fr-icon-*`` classes used in the templates), and their SVG files;
- ``dsfr.module.min.js`` / ``dsfr.nomodule.min.js`` (header menu, modals, collapses);
- ``favicon/``, and the package's ``LICENSE.md``.

Source-map comments are dropped (the maps are not vendored). The pinned version is written
back into ``moderation/dsfr.py`` (``DSFR_VERSION``) and the README.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from moderation.dsfr import DSFR_DIR, DSFR_VERSION

PACKAGE = "@gouvfr/dsfr"
#: ``fr-icon-<name>`` classes used by the templates (console and web chat). Add one here and
#: rerun the script: its rule and its SVG are then vendored.
UTILITY_ICONS = (
    "account-circle-line",
    "arrow-left-line",
    "check-line",
    "close-line",
    "download-line",
    "edit-line",
    "filter-line",
    "keyboard-line",
    "logout-box-r-line",
    "question-line",
    "refresh-line",
    "search-line",
    "send-plane-fill",
)
ENTRY_FILES = (
    "dsfr.min.css",
    "dsfr.module.min.js",
    "dsfr.nomodule.min.js",
    "favicon/apple-touch-icon.png",
    "favicon/android-chrome-192x192.png",
    "favicon/android-chrome-512x512.png",
    "favicon/favicon.ico",
    "favicon/favicon.svg",
    "favicon/manifest.webmanifest",
)
UTILITY_CSS = "utility/icons/icons.min.css"
KEEP = ("README.md",)

_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")
_SOURCE_MAP = re.compile(r"\n?/[*/]# sourceMappingURL=[^\n]*(?:\*/)?\s*$")
_RULE = re.compile(r"\.fr-icon-([a-z0-9-]+):after,\.fr-icon-\1:before\{-webkit-mask-image:[^{}]*\}")


class VendorError(RuntimeError):
    pass


def css_references(css: str, css_path: str) -> list[str]:
    """The package paths (under ``dist/``) of the files a CSS file references."""
    out: list[str] = []
    base = posixpath.dirname(css_path)
    for raw in _URL.findall(css):
        if raw.startswith(("data:", "http:", "https:", "//", "#")):
            continue
        path = posixpath.normpath(posixpath.join(base, raw.split("?")[0].split("#")[0]))
        if path.startswith("../"):
            raise VendorError(f"{css_path} references {raw}, outside dist/")
        if path not in out:
            out.append(path)
    return out


def utility_icons_css(css: str, names: tuple[str, ...] = UTILITY_ICONS) -> str:
    """The utility icons CSS cut down to the ``fr-icon-<name>`` rules of ``names``."""
    banner = css[: css.index("*/") + 2] if css.startswith("/*") else ""
    rules: dict[str, str] = {}
    for m in _RULE.finditer(css):  # (the -ms-high-contrast copies, for IE, are left out)
        rules.setdefault(m.group(1), m.group(0))
    missing = [n for n in names if n not in rules]
    if missing:
        raise VendorError(f"no such DSFR icon: {', '.join(missing)}")
    return banner + "\n" + "\n".join(rules[n] for n in sorted(names)) + "\n"


def _strip_source_map(data: bytes, name: str) -> bytes:
    if not name.endswith((".css", ".js")):
        return data
    return _SOURCE_MAP.sub("\n", data.decode("utf-8")).encode("utf-8")


def vendor(
    tarball: Path, target: Path = DSFR_DIR, icons: tuple[str, ...] = UTILITY_ICONS
) -> tuple[str, list[str]]:
    """Copy what is used out of an ``npm pack`` tarball; returns (version, files written)."""
    with tarfile.open(tarball, "r:gz") as tar:

        def read(path: str) -> bytes:
            try:
                member = tar.extractfile("package/" + path)
            except KeyError:
                member = None
            if member is None:
                raise VendorError(f"{path} is not in {tarball.name}")
            return member.read()

        version = str(json.loads(read("package.json"))["version"])
        files: dict[str, bytes] = {"LICENSE.md": read("LICENSE.md")}
        for name in ENTRY_FILES:
            files[name] = read("dist/" + name)
        utility = read("dist/" + UTILITY_CSS).decode()
        files[UTILITY_CSS] = utility_icons_css(utility, icons).encode()
        for css_name in ("dsfr.min.css", UTILITY_CSS):
            for ref in css_references(files[css_name].decode(), css_name):
                files.setdefault(ref, read("dist/" + ref))
    for old in target.iterdir() if target.exists() else ():
        if old.name in KEEP:
            continue
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    for name, data in sorted(files.items()):
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(_strip_source_map(data, name))
    return version, sorted(files)


def pin_version(version: str) -> None:
    """Write the version into ``DSFR_VERSION`` and the vendored directory's README."""
    module = Path(__file__).with_name("dsfr.py")
    text = module.read_text()
    module.write_text(
        re.sub(r'^DSFR_VERSION = "[^"]*"', f'DSFR_VERSION = "{version}"', text, flags=re.M)
    )
    readme = DSFR_DIR / "README.md"
    if readme.exists():
        text = readme.read_text()
        readme.write_text(re.sub(r"\*\*\d+\.\d+\.\d+\*\*", f"**{version}**", text, count=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", nargs="?", default=DSFR_VERSION)
    parser.add_argument("--tarball", type=Path, help="an already downloaded npm pack tarball")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dsfr-") as tmp:
        tarball = args.tarball
        if tarball is None:
            npm = shutil.which("npm")
            if npm is None:
                print("npm is needed (or pass --tarball)", file=sys.stderr)
                return 2
            subprocess.run(  # noqa: S603 (fixed program, arguments from the command line)
                [
                    npm,
                    "pack",
                    f"{PACKAGE}@{args.version}",
                    "--pack-destination",
                    tmp,
                    "--loglevel=error",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            tarball = next(Path(tmp).glob("*.tgz"))
        try:
            version, written = vendor(tarball)
        except VendorError as exc:
            print(exc, file=sys.stderr)
            return 2
    pin_version(version)
    size = sum((DSFR_DIR / name).stat().st_size for name in written)
    print(f"DSFR {version}: {len(written)} files, {size / 1024:.0f} KiB in {DSFR_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
