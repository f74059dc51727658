"""A stand-in for Gradescope's per-submission Docker container, made with bubblewrap, for the tests.

What it shares with a Docker container started with Docker's defaults (what Gradescope documents: an Ubuntu
image, the autograder run as root, https://gradescope-autograders.readthedocs.io/en/latest/best_practices/):

* root inside, with Docker's default capability set only (no CAP_SYS_ADMIN);
* Docker's default seccomp profile's answer to namespaces: ``unshare``/``clone`` with a namespace flag and
  ``setns`` refused, ``clone3`` ENOSYS (``lecture_grading.seccomp.no_namespaces``): bubblewrap cannot start
  inside it, exactly as in Gradescope's containers;
* its own mount, PID, IPC and UTS namespaces; the network is the host's (Gradescope's reaches the internet);
* a file system of its own: the system (``/usr`` ...), the Python it runs (its folders bound read-only, the
  folders above them made readable, as an image that installs Python in /opt would have them), a private
  ``/tmp``, and ``/autograder`` bound from a folder of the test's.  Nothing of the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lecture_grading import seccomp
from lecture_grading.grader.sandbox import bubblewrap

#: Docker's default capabilities (moby's oci/caps/defaults.go).
DOCKER_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
               "CAP_KILL", "CAP_AUDIT_WRITE")


def python_folders(python: Path) -> list[Path]:
    """The folders ``python`` imports from (its prefixes and every sys.path entry that exists)."""
    probe = "import sys, sysconfig; print('\\n'.join([sys.prefix, sys.base_prefix, *sys.path]))"
    out = subprocess.run([str(python), "-I", "-c", probe], capture_output=True, text=True, check=True).stdout
    found = {Path(p).resolve() for p in out.splitlines() if p and Path(p).exists()}
    found.add(Path(os.path.realpath(python)).parent.parent)
    return [p for p in sorted(found) if not any(q != p and q in p.parents for q in found)]


def run(command: list[str], autograder_root: Path, python: Path, env: dict | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``command`` as root in the container, ``/autograder`` being ``autograder_root``, cwd /autograder."""
    args = ["bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent",
            "--hostname", "gradescope", *bubblewrap.os_binds(), "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/var/tmp"]
    args += bubblewrap.readonly_binds(python_folders(python), {"/usr", "/tmp", "/dev", "/proc", "/var", "/var/tmp"})
    args += ["--bind", str(autograder_root), "/autograder", "--chdir", "/autograder", "--clearenv"]
    for k, v in {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", **(env or {})}.items():
        args += ["--setenv", k, v]
    args += ["--cap-drop", "ALL"]
    for cap in DOCKER_CAPS:
        args += ["--cap-add", cap]
    r, w = os.pipe()
    os.write(w, seccomp.program(seccomp.no_namespaces()))
    os.close(w)
    try:
        return subprocess.run([*args, "--seccomp", str(r), "--", *command], capture_output=True, text=True,
                              timeout=timeout, pass_fds=(r,), stdin=subprocess.DEVNULL)
    finally:
        os.close(r)


def tracked_copy(root: Path, dest: Path) -> Path:
    """The files a clean clone of ``root`` has (git's tracked files, as they are in the work tree)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = root / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(src.read_bytes())
    return dest


def venv_with(wheel: Path, folder: Path) -> Path:
    """A new virtual environment with ``wheel`` installed (offline, --no-deps); its dependencies (torch, ...)
    come from this test environment's site-packages through a .pth line.  Returns its python."""
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "_test_venv_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=300)
    return python
