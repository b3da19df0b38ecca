"""Done-when proof: a fresh virtual environment with the package installed runs a user's test file.

The package is installed from a copy of this checkout (not editable, nothing
downloaded: ``--no-deps --no-index``, its dependencies come from this
interpreter through ``--system-site-packages``), and the test file lives
outside the repository, so neither ``tests/`` nor the source tree is on its path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from tests.child_env import child_env

ROOT = Path(__file__).resolve().parents[2]

USER_TEST = textwrap.dedent(
    """
    from agenticaiframework.communication import MQTTClient, WebSocketClient

    async def test_my_consumer(agentcomm_mqtt_broker, agentcomm_ws_server, agentcomm_fault_proxy):
        link = agentcomm_fault_proxy(agentcomm_mqtt_broker.url)
        async with MQTTClient(link.url, reconnect_delay=0.05) as mqtt:
            await mqtt.subscribe("jobs/#", qos=1)
            await link.cut()  # the broker link drops; the client reconnects and resubscribes
            await mqtt.publish("jobs/1", {"n": 1}, qos=1)
            assert (await mqtt.receive()).json() == {"n": 1}
        async with WebSocketClient(agentcomm_ws_server.url) as ws:
            await ws.send({"ping": 1})
            assert await ws.receive(timeout=5) == {"ping": 1}
    """
)


def _run(*args: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout")
def test_a_fresh_venv_runs_a_ten_line_test_file_with_the_fixtures(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "agenticaiframework",
        source / "agenticaiframework",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    env = child_env()
    venv = tmp_path / "venv"
    # Without pip of its own: the venv would get an old setuptools from ensurepip. It
    # sees pip, setuptools and the dependencies of the environment running this test
    # through a .pth file (--system-site-packages would show the base interpreter's
    # instead, which on a fresh machine has neither wheel nor a recent setuptools).
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    site_packages = _run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        cwd=tmp_path, env=env,
    ).stdout.strip()  # fmt: skip
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site_packages) / "_outer_environment.pth").write_text("\n".join(sorted(ours)) + "\n")
    _run(
        python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
        source, cwd=tmp_path, env=env,
    )  # fmt: skip
    user = tmp_path / "user"
    user.mkdir()
    where = _run(
        python, "-c", "import agenticaiframework.communication as c; print(c.__file__)",
        cwd=user, env=env,
    )  # fmt: skip
    assert where.stdout.strip().startswith(str(venv)), where.stdout
    (user / "test_consumer.py").write_text(USER_TEST)
    (user / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
    )
    result = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=user, env=env)
    assert "1 passed" in result.stdout
