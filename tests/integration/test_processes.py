"""`edgeagent serve` as a process: CURVE security, loopback-only without keys, restart and reconnect."""

from __future__ import annotations

import pytest

from edgeagent.cli import main
from edgeagent.client import Client
from edgeagent.errors import ServiceTimeout


def robot_yaml(tmp_path, tiny_model, extra: str = "") -> str:
    cfg = tmp_path / "robot.yaml"
    cfg.write_text(f"""
backend: {{kind: sim, sim: {{blocks: [red, green], bowls: [blue], seed: 5}}}}
planner: {{model: {tiny_model}}}
router: {{mode: local}}
service: {{endpoint: "tcp://127.0.0.1:*", events: "tcp://127.0.0.1:*"}}
{extra}""")
    return str(cfg)


def test_with_curve_only_allowed_clients_get_service(tiny_model, processes, tmp_path, capsys):
    keys = tmp_path / "keys"
    assert main(["keys", "generate", "robot", "laptop", "intruder", "--dir", str(keys)]) == 0
    assert (keys / "robot.key_secret").stat().st_mode & 0o777 == 0o600
    assert main(["keys", "generate", "robot", "--dir", str(keys)]) == 2  # never overwrites a key
    capsys.readouterr()
    cfg = robot_yaml(tmp_path, tiny_model,
                     "security: {secret_key: keys/robot.key_secret, allow: [keys/laptop.key]}\n")
    serve = processes(["serve", "--config", cfg])
    assert serve.ready["secure"] == "yes"
    ep = serve.ready["requests"]
    with Client(ep, timeout_s=5, secret_key=keys / "laptop.key_secret", server_key=str(keys / "robot.key")) as laptop:
        assert laptop.ping()["pong"] is True
        assert laptop.plan("put the red block in the blue bowl").model.startswith("tiny-random@")
        task = laptop.run("put the red block in the blue bowl", max_steps=1)
        kinds = [e["kind"] for e in laptop.follow(task, timeout_s=20)]  # events over CURVE too
    assert kinds[0] == "plan" and kinds[-1] in ("done", "max_steps", "error")
    with Client(ep, timeout_s=0.5, secret_key=keys / "intruder.key_secret", server_key=str(keys / "robot.key")) as bad:
        with pytest.raises(ServiceTimeout):
            bad.ping()
    with Client(ep, timeout_s=0.5) as plain:
        with pytest.raises(ServiceTimeout):
            plain.ping()
    assert "refused a CURVE client" in "".join(serve.stderr)


def test_without_keys_the_service_refuses_a_public_address(capsys):
    rc = main(["serve", "--endpoint", "tcp://0.0.0.0:5555"])
    err = capsys.readouterr().err
    assert rc == 2 and "no keys are configured" in err and "loopback" in err


def test_service_restarted_the_client_reconnects_and_carries_on(tiny_model, processes, tmp_path):
    cfg = robot_yaml(tmp_path, tiny_model)
    first = processes(["serve", "--config", cfg])
    assert first.ready["secure"].startswith("no")
    endpoint = first.ready["requests"]
    with Client(endpoint, timeout_s=3) as client:
        before = client.plan("put the red block in the blue bowl")
        for _ in range(5):
            client.ping()
        assert first.terminate() == 0  # SIGTERM: a clean shutdown
        assert "loopback only" in "".join(first.stderr)
        second = processes(["serve", "--config", cfg, "--endpoint", endpoint])
        after = client.plan("put the red block in the blue bowl")
        health = client.health()
    assert second.ready["requests"] == endpoint
    assert after.calls == before.calls
    assert health["requests"] <= 3  # answered by the new process (the first one had 6 already)
