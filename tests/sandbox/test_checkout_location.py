"""The suite passes from a checkout no other user can read (a clone in a 0700 home).

A copy of this checkout's sources and non-root tests, with a venv of its own, is put under a
0700 directory, and the non-root test runs there in a pytest of its own: the user it creates
must not need to read the checkout, its venv or the venv's interpreter.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the test it runs "
                                 "creates a user, and only root can hide a checkout from one")]
ROOT = Path(__file__).resolve().parents[2]
NONROOT_TEST = ("tests/sandbox/test_nonroot.py::"
                "test_files_written_in_the_sandbox_belong_to_the_non_root_host_user")
COPIED = ("pyproject.toml", "server/channelcoder", "tests/__init__.py", "tests/conftest.py",
          "tests/plugins", "tests/sandbox/__init__.py", "tests/sandbox/conftest.py",
          "tests/sandbox/test_nonroot.py")
OWN_ENV = ("CHANNELCODER_STATE_DIR", "CHANNELCODER_CACHE_DIR", "CHANNELCODER_CLAUDE",
           "CHANNELCODER_DOCKER_LABELS", "PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")


def hidden_checkout(at: Path) -> Path:
    """A copy of this checkout under `at` (0700, root's): sources, tests and a venv whose
    only way to channelcoder is the copy."""
    at.mkdir(mode=0o700)
    at.chmod(0o700)
    checkout = at / "checkout"
    for name in COPIED:
        source, target = ROOT / name, checkout / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(".pytest_cache"))
        else:
            shutil.copy2(source, target)
    venv = checkout / ".venv"
    subprocess.run([os.path.realpath(sys.executable), "-m", "venv", "--without-pip", venv],
                   check=True, capture_output=True)
    found = subprocess.run([venv / "bin/python", "-c",
                            "import site; print(site.getsitepackages()[0])"],
                           check=True, capture_output=True, text=True).stdout.strip()
    paths = [checkout / "server", *site.getsitepackages()]
    (Path(found) / "checkout.pth").write_text("".join(f"{path}\n" for path in paths))
    return checkout


@pytest.mark.timeout(300)
def test_the_non_root_test_passes_from_a_checkout_other_users_cannot_read(
        sandbox_image: str, tmp_path: Path) -> None:
    checkout = hidden_checkout(tmp_path / "private")
    python = checkout / ".venv/bin/python"
    located = subprocess.run([python, "-c", "import channelcoder; print(channelcoder.__file__)"],
                             capture_output=True, text=True, check=True).stdout
    assert located.startswith(str(checkout / "server")), located
    env = {k: v for k, v in os.environ.items() if k not in OWN_ENV}
    done = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", NONROOT_TEST],
                          cwd=checkout, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and "1 passed" in done.stdout, \
        done.stdout[-4000:] + done.stderr[-2000:]
