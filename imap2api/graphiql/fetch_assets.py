"""Fetch the API explorers' browser assets from the npm registry into ``static/``.

The explorer at ``/graphql`` loads React, ReactDOM, GraphiQL and its explorer plugin from
imap2api itself, and the REST reference page ``/docs`` loads Swagger UI the same way, so both
work without internet access. Those files are third-party code: they are
not committed to the repository but downloaded once, at install or image-build time (``make
install``, the Dockerfile), by this script; a wheel built afterwards carries them as package data.

Standard library only, so it runs before any dependency is installed and where npm is absent::

    python imap2api/graphiql/fetch_assets.py          # or: python -m imap2api.graphiql.fetch_assets

Each package's tarball comes straight from the registry (``<registry>/<name>/-/<base>-<version>.tgz``)
and must match the pinned ``integrity`` (sha512, the value of the registry's ``dist.integrity``
and of a package-lock.json); each extracted file must match its pinned sha384, which the page
also uses as the browser's subresource integrity. A mismatch stops the script before anything is
written. Nothing is downloaded when every file is already present and intact, so running it again
is cheap. The registry can be a mirror: ``IMAP2API_NPM_REGISTRY`` or npm's own
``npm_config_registry``; HTTP(S) proxies come from the usual ``https_proxy`` variables.

To upgrade a package, change its version, take the new ``integrity`` from
``npm view <name>@<version> dist.integrity`` and the files' sha384 from
``openssl dgst -sha384 -binary FILE | base64`` (the script reports the values it found on a mismatch).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_REGISTRY = "https://registry.npmjs.org"
NOTICES = "THIRD-PARTY-NOTICES.txt"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # sha512 of the tarball, as in the registry's dist.integrity


@dataclass(frozen=True)
class Asset:
    package: Package
    member: str  # path inside the tarball
    filename: str  # name under static/ (versioned, so browsers never keep a stale copy)
    sha384: str  # of the file, base64, as in an HTML integrity attribute

    @property
    def sri(self) -> str:
        return f"sha384-{self.sha384}"


# The versions Strawberry's own GraphiQL page uses (strawberry/static/graphiql.html), same bytes.
REACT = Package(
    "react",
    "18.2.0",
    "sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ==",
)
REACT_DOM = Package(
    "react-dom",
    "18.2.0",
    "sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g==",
)
GRAPHIQL = Package(
    "graphiql",
    "3.8.3",
    "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
)
EXPLORER = Package(
    "@graphiql/plugin-explorer",
    "1.0.2",
    "sha512-9j+kg2UjtLZD5EBmGjeWHkoVVxtbShYg2DzbUVebibnZYZM/iMBEF4vaccXJIAm5KaomIPLx0aoNs4LbODyc3Q==",
)
SWAGGER_UI = Package(
    "swagger-ui-dist",
    "5.35.0",
    "sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==",
)
PACKAGES = (REACT, REACT_DOM, GRAPHIQL, EXPLORER, SWAGGER_UI)

# In the order the page loads them.
STYLES = (
    Asset(
        GRAPHIQL,
        "package/graphiql.min.css",
        "graphiql-3.8.3.min.css",
        "Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
    ),
    Asset(
        EXPLORER,
        "package/dist/style.css",
        "plugin-explorer-1.0.2.css",
        "5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
    ),
)
SCRIPTS = (
    Asset(
        REACT,
        "package/umd/react.production.min.js",
        "react-18.2.0.production.min.js",
        "tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
    ),
    Asset(
        REACT_DOM,
        "package/umd/react-dom.production.min.js",
        "react-dom-18.2.0.production.min.js",
        "bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
    ),
    Asset(
        GRAPHIQL,
        "package/graphiql.min.js",
        "graphiql-3.8.3.min.js",
        "HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    ),
    Asset(
        EXPLORER,
        "package/dist/index.umd.js",
        "plugin-explorer-1.0.2.umd.js",
        "2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
    ),
)
# The REST reference page (imap2api.graphiql.openapi_pages).
SWAGGER_CSS = Asset(
    SWAGGER_UI,
    "package/swagger-ui.css",
    "swagger-ui-5.35.0.css",
    "WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I",
)
SWAGGER_JS = Asset(
    SWAGGER_UI,
    "package/swagger-ui-bundle.js",
    "swagger-ui-bundle-5.35.0.js",
    "gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9",
)
SWAGGER_ICON = Asset(
    SWAGGER_UI,
    "package/favicon-32x32.png",
    "swagger-ui-favicon-32x32.png",
    "vCPruBEcPmxk2uv19KNJCkWttTDv8oQxBAzSuTndOepjsIyiKHSoLNlWOcQMpXdL",
)
REFERENCE = (SWAGGER_CSS, SWAGGER_JS, SWAGGER_ICON)
ASSETS = STYLES + SCRIPTS + REFERENCE


class FetchError(Exception):
    """A download failed or did not match its pinned digest."""


def _b64(algorithm: str, data: bytes) -> str:
    return base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


def _intact(path: Path, asset: Asset) -> bool:
    return path.is_file() and _b64("sha384", path.read_bytes()) == asset.sha384


def registry_url() -> str:
    """The registry to download from: a mirror when configured, else the public one."""
    for name in ("IMAP2API_NPM_REGISTRY", "npm_config_registry", "NPM_CONFIG_REGISTRY"):
        if os.environ.get(name):
            return os.environ[name].rstrip("/")
    return DEFAULT_REGISTRY


def tarball_url(package: Package, registry: str) -> str:
    base = package.name.rsplit("/", 1)[-1]
    return f"{registry}/{package.name}/-/{base}-{package.version}.tgz"


def download(package: Package, registry: str, timeout: float = 60) -> bytes:
    """The package's tarball, checked against its pinned integrity."""
    url = tarball_url(package, registry)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (https or a configured mirror)
            data: bytes = response.read()
    except OSError as exc:
        raise FetchError(f"cannot download {url}: {exc}") from exc
    algorithm, _, expected = package.integrity.partition("-")
    actual = _b64(algorithm, data)
    if actual != expected:
        raise FetchError(
            f"{url}: integrity mismatch (expected {package.integrity}, got {algorithm}-{actual})"
        )
    return data


def _members(data: bytes) -> dict[str, bytes]:
    """The regular files of a tarball, by path."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for info in archive.getmembers():
            if info.isfile():
                extracted = archive.extractfile(info)
                if extracted is not None:
                    files[info.name] = extracted.read()
    return files


def _notice(package: Package, files: dict[str, bytes], registry: str) -> str:
    meta = json.loads(files.get("package/package.json", b"{}"))
    license_text = next(
        (
            files[name].decode("utf-8", "replace")
            for name in ("package/LICENSE", "package/LICENSE.md", "package/license")
            if name in files
        ),
        "",
    )
    lines = [
        f"{package.name}@{package.version}  license: {meta.get('license', 'see package')}",
        f"from {tarball_url(package, registry)} ({package.integrity})",
    ]
    return "\n".join(lines) + ("\n\n" + license_text.strip() if license_text else "") + "\n"


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    os.replace(partial, path)


def missing(directory: Path = STATIC_DIR) -> list[Asset]:
    """The assets that are absent or altered."""
    return [asset for asset in ASSETS if not _intact(directory / asset.filename, asset)]


def fetch(directory: Path = STATIC_DIR, *, force: bool = False, log: Callable[[str], object] = print) -> bool:
    """Make ``directory`` hold every asset; True when something was downloaded."""
    wanted = list(ASSETS) if force else missing(directory)
    if not wanted and (directory / NOTICES).is_file():
        return False
    registry = registry_url()
    contents: dict[str, bytes] = {}
    notices: list[str] = []
    for package in PACKAGES:  # all verified before anything is written
        log(f"fetching {package.name}@{package.version} from {registry}")
        files = _members(download(package, registry))
        notices.append(_notice(package, files, registry))
        for asset in ASSETS:
            if asset.package != package:
                continue
            data = files.get(asset.member)
            if data is None:
                raise FetchError(f"{package.name}@{package.version} has no {asset.member}")
            if _b64("sha384", data) != asset.sha384:
                raise FetchError(
                    f"{package.name}@{package.version} {asset.member}: sha384 mismatch "
                    f"(expected {asset.sha384}, got {_b64('sha384', data)})"
                )
            contents[asset.filename] = data
    directory.mkdir(parents=True, exist_ok=True)
    for filename, data in contents.items():
        _write(directory / filename, data)
    _write(directory / NOTICES, "\n\n".join(notices).encode())
    keep = {asset.filename for asset in ASSETS} | {NOTICES}
    for path in directory.iterdir():  # files of earlier versions
        if path.is_file() and path.name not in keep:
            path.unlink()
    log(f"GraphiQL and Swagger UI assets ready in {directory}")
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(arg not in ("--force", "--check") for arg in args):
        print("usage: fetch_assets.py [--force | --check]", file=sys.stderr)
        return 2
    if "--check" in args:
        absent = missing()
        for asset in absent:
            print(f"missing or altered: {STATIC_DIR / asset.filename}", file=sys.stderr)
        return 1 if absent else 0
    try:
        if not fetch(force="--force" in args):
            print(f"GraphiQL and Swagger UI assets up to date in {STATIC_DIR}")
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
