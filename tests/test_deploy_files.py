"""compose.yaml and deploy/Caddyfile, checked without a Docker engine (none runs here).

compose.yaml is validated against the Compose Specification's own JSON schema
(tests/data/compose-spec.json: compose-spec/compose-spec, schema/compose-spec.json at commit
170098ba07d9f53c383a41bfd4c5166b0a4529a6, Apache-2.0), after substituting ``${VAR}`` as Compose
would; then what this deployment relies on is checked one by one: what the bot's settings
accept (through ``Settings`` itself), replicas, health checks, start-up order.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import jsonschema
import pytest
import yaml

from bot.config import Settings
from bot.web import webhook_path

ROOT: Final = Path(__file__).resolve().parent.parent
COMPOSE: Final = ROOT / "compose.yaml"
CADDYFILE: Final = ROOT / "deploy" / "Caddyfile"
SCHEMA: Final = Path(__file__).parent / "data" / "compose-spec.json"
ENV: Final = {
    "TELEGRAM_BOT_TOKEN": "123456789:AAFakeTokenForTestsOnly_abcdefghijk",
    "DOMAIN": "bot.example.org",
    "WEBHOOK_SECRET": "0123456789abcdef0123456789abcdef",
    "POSTGRES_PASSWORD": "not-a-real-password",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\?[^}]*)?\}")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ``${NAME}`` / ``${NAME:?message}`` substitution, failing like it on a gap."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise KeyError(f"{name} is required")
            return env[name]

        return _VARIABLE.sub(replace, value)
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return interpolate(loaded, ENV)  # type: ignore[no-any-return]


def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_compose_yaml_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    validator().validate(compose)


def test_the_schema_check_catches_a_broken_file(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["bot"]["healthcheck"]["intervall"] = "10s"  # a typo Compose rejects
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        validator().validate(broken)


def test_every_required_variable_fails_loudly_when_missing() -> None:
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    for missing in ENV:
        partial = {name: value for name, value in ENV.items() if name != missing}
        with pytest.raises(KeyError, match=missing):
            interpolate(raw, partial)


def test_two_webhook_replicas_whose_environment_the_bot_accepts(compose: dict[str, Any]) -> None:
    bot = compose["services"]["bot"]
    assert bot["deploy"]["replicas"] == 2
    assert "ports" not in bot  # reached only through the proxy
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in bot["environment"].items()})
    assert settings.webhook_mode
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.redis_url is not None
    assert settings.log_format == "json"
    assert webhook_path(settings.webhook_url or "") == "/telegram"


def test_every_service_has_a_healthcheck_and_starts_after_what_it_needs(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {"bot", "postgres", "redis", "proxy"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        assert service.get("restart") == "unless-stopped", name
    for needed in ("postgres", "redis"):
        assert services["bot"]["depends_on"][needed]["condition"] == "service_healthy"
    assert services["proxy"]["depends_on"]["bot"]["condition"] == "service_healthy"
    probe = " ".join(services["bot"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8080/healthz" in probe
    assert services["proxy"]["ports"] == ["80:80", "443:443"]


def test_the_proxy_forwards_only_the_webhook_path_to_every_replica() -> None:
    caddyfile = CADDYFILE.read_text(encoding="utf-8")
    assert "{$DOMAIN} {" in caddyfile
    assert re.search(
        r"handle /telegram \{\s*reverse_proxy \{\s*(#.*\n\s*)*dynamic a bot 8080", caddyfile
    )
    assert "respond 404" in caddyfile  # /healthz and /metrics are not public
    assert "/healthz" not in caddyfile.split("handle {")[-1]
    # Blocks balance (placeholders aside): Caddy would refuse the file otherwise.
    code = "\n".join(line.split("#", 1)[0] for line in caddyfile.splitlines())
    code = code.replace("{$DOMAIN}", "DOMAIN")
    assert code.count("{") == code.count("}") == 5
