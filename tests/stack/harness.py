"""The machinery behind `make stack-test`: a private Docker daemon, images built from Debian alone,
and the compose project driven through docker-compose 1.29.2.

Everything it starts lives under one work folder (the daemon's data root, exec root and socket),
so stopping the daemon and removing the folder removes every image, container and volume it made.
Every command runs with a timeout and every wait has a deadline that names what it waited for:
a stuck build or container fails the run instead of hanging it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OVERRIDE = REPO / "docker" / "compose.stack-test.yml"
LOCAL = REPO / "docker" / "local"  # machine files for the builds (docker/local/.gitignore)

# Local image names, handed to the compose file through its image variables.
DEBIAN_IMAGE = "forecasting-stack/debian:bookworm"
PYTHON_IMAGE = "forecasting-stack/python:3.11-bookworm"
POSTGRES_IMAGE = "forecasting-stack/postgres:15"
S3_IMAGE = "forecasting-stack/s3-standin:moto"
PROJECT_IMAGE = "forecasting:stack-test"
TORCH_WHEEL_VERSION = "2.13.0+cpu"  # the exact CPU wheel on local disk (constraints.txt pins 2.13.0)


class StackError(RuntimeError):
    """A step of the stack test failed; the message says which and carries the tail of its output."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, timeout: float, interval: float = 2.0, on_timeout=None):
    """Poll ``check()`` until it returns a truthy value; after ``timeout`` seconds raise, naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - a not-yet-ready service answers with all kinds of errors
            last = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last!r})" if last else ""
            extra = f"\n{on_timeout()}" if on_timeout else ""
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what}{detail}{extra}")
        time.sleep(interval)


def pip_setting(name: str) -> str:
    """One of pip's settings on this machine (environment first, then `pip config`), '' when unset."""
    value = os.environ.get(f"PIP_{name.upper().replace('-', '_')}", "")
    if value:
        return value
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60).stdout
    for line in out.splitlines():
        key, _, raw = line.partition("=")
        if key.split(".", 1)[-1] == name:
            return raw.strip().strip("'\"")
    return ""


def find_torch_wheel() -> Path:
    """The torch CPU wheel on local disk: STACK_TORCH_WHEEL, else pip's find-links folders."""
    if os.environ.get("STACK_TORCH_WHEEL"):
        return Path(os.environ["STACK_TORCH_WHEEL"])
    for folder in pip_setting("find-links").split():
        folder = folder.removeprefix("file://")
        found = sorted(Path(folder).glob(f"torch-{TORCH_WHEEL_VERSION}-cp311-*.whl")) if Path(folder).is_dir() else []
        if found:
            return found[0]
    raise StackError(f"no torch-{TORCH_WHEEL_VERSION} wheel: set STACK_TORCH_WHEEL or pip's find-links")


@dataclass
class Stack:
    """One private dockerd and one compose project on it."""

    work: Path  # data root, exec root, socket, env file: removed at the end
    cache: Path  # bookworm-minbase.tar and compose-venv: kept between runs
    logs: Path  # daemon and service logs of the last run: kept for a look after a failure
    project: str = "forecasting-stacktest"
    env: dict[str, str] = field(default_factory=dict)
    _dockerd: subprocess.Popen | None = None
    _linked: list[Path] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.work / "docker.sock"

    @property
    def env_file(self) -> Path:
        return self.work / "stack.env"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}

    def run(self, args: list[str], *, timeout: float, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run(args, env=self._env(), capture_output=True, text=True, timeout=timeout, input=input, cwd=REPO)
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"")[-3000:] if isinstance(exc.stdout, bytes) else (exc.stdout or "")[-3000:]
            raise StackError(f"timed out after {timeout:.0f} s: {' '.join(args[:6])}\n{out}") from None
        if check and done.returncode != 0:
            raise StackError(f"exit {done.returncode}: {' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
        return done

    def docker(self, *args: str, timeout: float = 120, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        return self.run(["docker", *args], timeout=timeout, check=check, input=input)

    def compose(self, *args: str, timeout: float = 300, check: bool = True, env_file: Path | None = None) -> subprocess.CompletedProcess:
        binary = str(self.cache / "compose-venv" / "bin" / "docker-compose")
        files = ["-f", str(REPO / "docker-compose.yml"), "-f", str(OVERRIDE)]
        return self.run([binary, "--ansi", "never", "--env-file", str(env_file or self.env_file), "-p", self.project, *files, *args],
                        timeout=timeout, check=check)

    # --- 1. the daemon -----------------------------------------------------------------------

    def start_daemon(self, timeout: float = 120) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / "dockerd.log", "w")  # noqa: SIM115 - the daemon writes it until stopped
        # No default bridge (compose makes its own networks) and no iptables/NAT rules: containers
        # reach each other and, through published ports, this machine's loopback only.
        self._dockerd = subprocess.Popen(
            ["dockerd", "--data-root", str(self.work / "data"), "--exec-root", str(self.work / "exec"),
             "--pidfile", str(self.work / "dockerd.pid"), "--host", f"unix://{self.socket}",
             "--iptables=false", "--ip-masq=false", "--bridge=none"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

        def up():
            if self._dockerd.poll() is not None:
                raise StackError(f"dockerd exited with {self._dockerd.returncode}: see {self.logs / 'dockerd.log'}")
            return self.docker("version", "--format", "{{.Server.Version}}", timeout=20, check=False).returncode == 0

        wait_for("dockerd to answer on its socket", up, timeout, interval=1)

    def stop_daemon(self, timeout: float = 60) -> None:
        proc, self._dockerd = self._dockerd, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def remove_work(self) -> None:
        """Unmount whatever the daemon left mounted under the work folder, then delete it."""
        prefix = str(self.work.resolve()) + "/"
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, timeout=30)
        shutil.rmtree(self.work, ignore_errors=True)

    # --- 2. the images -----------------------------------------------------------------------

    def build_images(self) -> dict[str, float]:
        """Base from debootstrap, Python base, PostgreSQL and the S3 stand-in with docker build;
        the project image through the compose file's own build section. Returns seconds per image."""
        times: dict[str, float] = {}

        def timed(name, fn):
            start = time.monotonic()
            fn()
            times[name] = round(time.monotonic() - start, 1)

        rootfs = self.cache / "bookworm-minbase.tar"
        if not rootfs.is_file():
            raise StackError(f"{rootfs} is missing: docker/stack-tools.sh makes it")
        with open(rootfs, "rb") as fh:
            timed(DEBIAN_IMAGE, lambda: self._import(fh))
        timed(PYTHON_IMAGE, lambda: self.docker("build", "--network", "host", "--build-arg", f"DEBIAN_IMAGE={DEBIAN_IMAGE}",
                                                "-t", PYTHON_IMAGE, "docker/base", timeout=900))
        timed(POSTGRES_IMAGE, lambda: self.docker("build", "--network", "host", "--build-arg", f"DEBIAN_IMAGE={DEBIAN_IMAGE}",
                                                  "-t", POSTGRES_IMAGE, "docker/postgres", timeout=900))
        self._link_local_files()
        try:
            timed(S3_IMAGE, lambda: self.docker("build", "--network", "host", "--build-arg", f"BASE_IMAGE={PYTHON_IMAGE}",
                                                "-t", S3_IMAGE, "-f", "docker/s3-standin/Dockerfile", "docker", timeout=900))
            # The compose file builds the project image (BASE_IMAGE and the torch index from the env file).
            timed(PROJECT_IMAGE, lambda: self.compose("build", "mlflow", timeout=2400))
        finally:
            self._unlink_local_files()
        return times

    def _import(self, fh) -> None:
        try:
            done = subprocess.run(["docker", "import", "-", DEBIAN_IMAGE], stdin=fh, env=self._env(), capture_output=True,
                                  text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise StackError("timed out after 600 s: docker import of the debootstrap root file system") from None
        if done.returncode:
            raise StackError(f"docker import failed: {done.stderr[-2000:]}")

    def _link_local_files(self) -> None:
        """The torch CPU wheel and pip's CA bundle enter the build context in docker/local/ (git-ignored)."""
        wheel = find_torch_wheel()
        targets = [(wheel, LOCAL / wheel.name)]
        cert = pip_setting("cert")
        if cert and Path(cert).is_file():
            targets.append((Path(cert), LOCAL / "ca.crt"))
        for source, target in targets:
            if target.exists():
                continue
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
            self._linked.append(target)

    def _unlink_local_files(self) -> None:
        for path in self._linked:
            path.unlink(missing_ok=True)
        self._linked.clear()

    def image_sizes(self) -> dict[str, str]:
        out = self.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}", timeout=60).stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if line and not line.startswith("<none>"))

    def image_bytes(self, image: str) -> int:
        return int(self.docker("image", "inspect", "--format", "{{.Size}}", image, timeout=60).stdout.strip())

    # --- 3. the env file ---------------------------------------------------------------------

    def write_env(self, **extra: str) -> dict[str, str]:
        """A test .env: fresh random secrets, free loopback ports, the local images, small workers."""
        env = {
            "POSTGRES_USER": "forecasting",
            "POSTGRES_PASSWORD": secrets.token_urlsafe(18),
            "MLFLOW_DB": "mlflow",
            "PREFECT_DB": "prefect",
            "MINIO_ROOT_USER": "forecasting",
            "MINIO_ROOT_PASSWORD": secrets.token_urlsafe(18),
            "MLFLOW_BUCKET": "mlflow",
            "BIND_ADDRESS": "127.0.0.1",
            "POSTGRES_PORT": str(free_port()),
            "MINIO_PORT": str(free_port()),
            "MINIO_CONSOLE_PORT": str(free_port()),
            "MLFLOW_PORT": str(free_port()),
            "PREFECT_PORT": str(free_port()),
            "WORK_POOL": "forecasting",
            "WORKER_LIMIT": "1",
            "WORKER_THREADS": "1",
            "WORKER_OMP_WAIT_POLICY": "PASSIVE",
            "TASK_RUNNER": "sequential",
            "TRAINING_ACCELERATOR": "cpu",
            "TRAINING_PRECISION": "32-true",
            "FORECASTING_IMAGE": PROJECT_IMAGE,
            "BASE_IMAGE": PYTHON_IMAGE,
            "POSTGRES_IMAGE": POSTGRES_IMAGE,
            "MINIO_IMAGE": S3_IMAGE,
            "MC_IMAGE": S3_IMAGE,
            # The index pip reaches from a build (the torch CPU wheel itself comes from docker/local/).
            "TORCH_INDEX_URL": os.environ.get("STACK_PIP_INDEX", "https://pypi.org/simple"),
            "TORCH_VERSION": TORCH_WHEEL_VERSION,
            **extra,
        }
        self.work.mkdir(parents=True, exist_ok=True)
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        self.env_file.chmod(0o600)
        self.env = env
        return env

    # --- 4. health ---------------------------------------------------------------------------

    def containers(self, service: str | None = None) -> list[dict]:
        ids = self.compose("ps", "-a", "-q", *([service] if service else []), timeout=60).stdout.split()
        if not ids:
            return []
        return json.loads(self.docker("inspect", *ids, timeout=60).stdout)

    def wait_healthy(self, timeout: float, one_shot: tuple[str, ...] = ("create-bucket", "deploy")) -> dict[str, str]:
        """Every long-running container healthy and every one-shot container exited 0."""

        def states() -> dict[str, str]:
            found = {}
            for c in self.containers():
                name = c["Name"].lstrip("/")
                service = c["Config"]["Labels"]["com.docker.compose.service"]
                state = c["State"]
                if service in one_shot:
                    if state["Status"] == "exited" and state["ExitCode"] != 0:
                        raise StackError(f"{name} exited with {state['ExitCode']}:\n{self.logs_of(service)}")
                    found[name] = "completed" if state["Status"] == "exited" else state["Status"]
                else:
                    if state["Status"] in ("exited", "dead") or state.get("Restarting"):
                        raise StackError(f"{name} is {state['Status']} (exit {state['ExitCode']}):\n{self.logs_of(service)}")
                    found[name] = state.get("Health", {}).get("Status", "no healthcheck")
            return found

        def all_ready():
            found = states()
            ready = found and all(s in ("healthy", "completed") for s in found.values())
            return found if ready else None

        return wait_for("every service healthy and the one-shot services completed", all_ready, timeout, interval=3,
                        on_timeout=lambda: f"states: {self._safe(states)}\n{self.logs_of(None, tail=40)}")

    def _safe(self, fn):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - only for an error message
            return repr(exc)

    def logs_of(self, service: str | None, tail: int = 60) -> str:
        done = self.compose("logs", "--no-color", "--tail", str(tail), *([service] if service else []), timeout=120, check=False)
        return done.stdout[-8000:] + done.stderr[-2000:]

    def save_logs(self) -> None:
        done = self.compose("logs", "--no-color", "--timestamps", timeout=180, check=False)
        (self.logs / "compose.log").write_text(done.stdout + done.stderr)

    def exec(self, service: str, *args: str, timeout: float = 120, index: int = 1) -> str:
        return self.compose("exec", "-T", "--index", str(index), service, *args, timeout=timeout).stdout
