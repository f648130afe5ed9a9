"""Make `python3 -m uv` work for the Python running this script, installing uv from PyPI if needed.

The README's commands start with it. A plain `pip install uv` is refused by Pythons whose
distribution manages the system packages (PEP 668, e.g. Debian's and Ubuntu's python3:
"externally-managed-environment"); there uv goes to the user's own site-packages instead, which
changes nothing the distribution owns. Standard library only.
"""

import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path

INSTALL_DOCS = "https://docs.astral.sh/uv/getting-started/installation/"


def externally_managed() -> bool:
    """PEP 668's test: a marker file in the standard library, outside a virtual environment."""
    in_virtualenv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    marker = Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED"
    return not in_virtualenv and marker.is_file()


def uv_runs() -> bool:
    """Whether `python -m uv` works, asked of a fresh interpreter: this one's sys.path was fixed at
    start, before an install could create the user site-packages directory."""
    probe = [sys.executable, "-m", "uv", "--version"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def fail(message: str) -> int:
    print(f"ensure_uv: {message}", file=sys.stderr)
    return 1


def main() -> int:
    if importlib.util.find_spec("uv") is not None:
        return 0
    python = Path(sys.executable).name or "python3"
    if importlib.util.find_spec("pip") is None:
        return fail(
            f"uv is not installed for {sys.executable}, and this Python has no pip to install it "
            f"with. Install pip (Debian/Ubuntu: `apt install python3-pip`) and run the command "
            f"again, or install uv another way ({INSTALL_DOCS}) and run the command with `uv` in "
            f"place of `{python} -m uv`."
        )
    install = [sys.executable, "-m", "pip", "install", "--quiet", "uv"]
    if externally_managed():
        print(
            "ensure_uv: this Python's packages are managed by the system (PEP 668); installing "
            "uv for this user only (pip install --user).",
            file=sys.stderr,
        )
        install[4:4] = ["--user", "--break-system-packages"]
    if subprocess.run(install, check=False).returncode != 0:
        return fail(f"`{' '.join(install[2:])}` failed (its output is above).")
    if not uv_runs():
        return fail(
            f"uv was installed, but `{python} -m uv` still does not run (are user site-packages "
            f"disabled?). Install uv another way ({INSTALL_DOCS}) and run the command with `uv` "
            f"in place of `{python} -m uv`."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
