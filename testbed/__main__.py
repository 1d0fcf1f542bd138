"""The local testbed: `python -m testbed up|down|status`.

    python -m testbed up      # demo HTTPS services on 127.0.0.1:184xx behind a local CA (.testbed/tls/ca.pem), and
                              # two KWOK clusters with demo workloads (.testbed/kubeconfig.yaml)
    python -m testbed down    # stops all of it; no stray processes
    python -m testbed serve   # foreground HTTPS services, what `up` runs in the background

State lives in .testbed/ at the repository root (DV_TESTBED_DIR overrides it).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from testbed.kube import KubeTestbed
from testbed.services import ARM_PORT, SERVICES, Service, Testbed

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("DV_TESTBED_DIR", ROOT / ".testbed"))
PIDFILE = STATE / "demo.pid"
LOG = STATE / "demo.log"
START_TIMEOUT = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "serve"])
    args = parser.parse_args(argv)
    return {"up": up, "down": down, "status": status, "serve": serve}[args.command]()


def up() -> int:
    """Idempotent, and serialised: several test sessions (or `make` targets) may call it at once, and two
    concurrent starts of one KWOK cluster would fight over its ports and etcd directory."""
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "up.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when this process dies
        code = _up_https()
        if code == 0:
            try:
                KubeTestbed(STATE).start()
            except (RuntimeError, subprocess.SubprocessError) as exc:
                print(f"testbed: the Kubernetes clusters did not come up: {exc}")
                return 1
        return code


def _up_https() -> int:
    if _running_pid() is not None:
        print(f"testbed already running (pid {_running_pid()}); `python -m testbed down` stops it")
        return 0
    STATE.mkdir(parents=True, exist_ok=True)
    with LOG.open("ab") as log:
        process = subprocess.Popen(  # detached: it outlives this command, `down` ends it
            [sys.executable, "-m", "testbed", "serve"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"testbed failed to start (exit {process.returncode}); last lines of {LOG}:\n{_tail(LOG)}")
            return 1
        if _all_listening():
            PIDFILE.write_text(str(process.pid))
            print(f"testbed up: {len(SERVICES)} demo services on 127.0.0.1, CA at {STATE / 'tls' / 'ca.pem'}")
            return 0
        time.sleep(0.1)
    process.kill()
    print(f"testbed did not listen within {START_TIMEOUT:.0f}s; see {LOG}")
    return 1


def down() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "up.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # never while another command is bringing it up
        return _down()


def _down() -> int:
    try:
        KubeTestbed(STATE).stop()
    except RuntimeError as exc:
        print(f"testbed: stopping the clusters failed: {exc}")
    pid = _running_pid()
    if pid is None:
        PIDFILE.unlink(missing_ok=True)
        print("testbed not running")
        return 0
    os.killpg(pid, signal.SIGTERM)
    for _ in range(100):
        if not _alive(pid):
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    PIDFILE.unlink(missing_ok=True)
    print(f"testbed down (pid {pid})")
    return 0


def status() -> int:
    pid = _running_pid()
    print(f"testbed running (pid {pid})" if pid else "testbed not running")
    return 0 if pid else 3


def serve() -> int:
    testbed = Testbed(STATE)
    testbed.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"serving {len(SERVICES)} demo services", flush=True)
    stop.wait()
    testbed.stop()
    return 0


def _running_pid() -> int | None:
    try:
        pid = int(PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _all_listening() -> bool:
    for service in [*SERVICES, Service("arm", ARM_PORT, "valid", "arm")]:
        try:
            with socket.create_connection(("127.0.0.1", service.port), timeout=0.2):
                pass
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


if __name__ == "__main__":
    sys.exit(main())
