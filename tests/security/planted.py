"""A repository with credentials planted in every common config and source format (the secrets corpus).

Values are generated from a seeded random source in each credential's real shape (AWS key ids, GitHub and
Slack tokens, JWTs, base64 keys, connection strings...), so the oracle (detect-secrets) recognises them and
no real credential is ever written down. ``plant(root)`` writes the files and returns every planted value.
"""

from __future__ import annotations

import base64
import random
import string
from pathlib import Path

_ALNUM = string.ascii_letters + string.digits


def _rand(rng: random.Random, n: int, alphabet: str = _ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64(rng: random.Random, n_bytes: int) -> str:
    return base64.b64encode(bytes(rng.randrange(256) for _ in range(n_bytes))).decode()


def _private_key(rng: random.Random) -> str:
    body = _b64(rng, 600)
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----\n"


def plant(root: Path, seed: int = 16) -> list[str]:
    """Write the corpus under ``root``; returns the planted secret values (each must never reach a prompt)."""
    rng = random.Random(seed)
    hexdig = "0123456789abcdef"
    v = {
        "yaml_pw": "hunter2-correct-horse-battery",  # the value the issue found in a prompt
        "yaml_key": _rand(rng, 32),
        "yaml_nested_pw": "Zq" + _rand(rng, 14) + "!9",
        "json_key": _rand(rng, 40),
        "json_secret": _rand(rng, 24, hexdig) + _rand(rng, 16),
        "toml_token": _rand(rng, 36),
        "toml_pw": "pa55-" + _rand(rng, 18),
        "ini_pw": "Wint3r-" + _rand(rng, 12),
        "pypi": "pypi-AgEIcHlwaS5vcmc" + _rand(rng, 60, _ALNUM + "-_"),
        "npm": "npm_" + _rand(rng, 36),
        "props_pw": "S3cr3t" + _rand(rng, 10),
        "props_key": _rand(rng, 28),
        "env_pw": _rand(rng, 20),
        "docker_token": _rand(rng, 30),
        "docker_pw": "d0cker" + _rand(rng, 12),
        "k8s_data": base64.b64encode(("k8s-" + _rand(rng, 20)).encode()).decode(),
        "k8s_string": "strdata-" + _rand(rng, 20),
        "shell_aws": _rand(rng, 40, _ALNUM + "/+"),
        "shell_pw": "Sh3ll" + _rand(rng, 12),
        "curl_pw": "Curl" + _rand(rng, 10) + "9",
        "aws_id": "AKIA" + _rand(rng, 16, string.ascii_uppercase + "234567"),
        "github": "ghp_" + _rand(rng, 36),
        "gitlab": "glpat-" + _rand(rng, 20),
        "slack": "xoxb-" + _rand(rng, 11, string.digits) + "-" + _rand(rng, 12, string.digits) + "-" + _rand(rng, 24),
        "stripe": "sk_live_" + _rand(rng, 24),
        "sendgrid": "SG." + _rand(rng, 22, _ALNUM + "-_") + "." + _rand(rng, 43, _ALNUM + "-_"),
        "twilio": "SK" + _rand(rng, 32, hexdig),
        "mailchimp": _rand(rng, 32, hexdig) + "-us12",
        "openai": "sk-proj-" + _rand(rng, 48),
        "google": "AIza" + _rand(rng, 35, _ALNUM + "-_"),
        "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ" + _rand(rng, 30) + "." + _rand(rng, 43, _ALNUM + "-_"),
        "py_key": _rand(rng, 32),
        "py_url_pw": "Pg" + _rand(rng, 14),
        "js_key": _rand(rng, 32),
        "js_bearer": _rand(rng, 40),
        "go_pw": "G0" + _rand(rng, 14),
        "rust_secret": _rand(rng, 32),
        "azure_key": _b64(rng, 64),
        "mssql_pw": "Sql" + _rand(rng, 12) + "1",
        "redis_pw": "R3dis" + _rand(rng, 12),
        "basic_auth": "Ba5ic" + _rand(rng, 12),
        "hex_secret": _rand(rng, 64, hexdig),
        "b64_secret": _b64(rng, 40),
    }
    key_block = _private_key(rng)
    files = {
        "deploy/values.yaml": f"""replicaCount: 2
image:
  repository: registry.example.com/shop
database:
  host: db.internal
  user: shop
  password: {v['yaml_pw']}
apiKey: {v['yaml_key']}
smtp:
  credentials:
    password: "{v['yaml_nested_pw']}"
""",
        "config/settings.json": f"""{{
  "service": "billing",
  "api_key": "{v['json_key']}",
  "oauth": {{"client_id": "billing-app", "client_secret": "{v['json_secret']}"}}
}}
""",
        "config/app.toml": f"""[server]
port = 8080
[auth]
token = "{v['toml_token']}"
[database]
password = "{v['toml_pw']}"
""",
        "config/db.ini": f"""[postgres]
host = localhost
user = app
password = {v['ini_pw']}
""",
        "deploy/.pypirc": f"""[distutils]
index-servers = pypi
[pypi]
username = __token__
password = {v['pypi']}
""",
        "web/.npmrc": f"""registry=https://registry.npmjs.org/
//registry.npmjs.org/:_authToken={v['npm']}
""",
        "src/main/resources/application.properties": f"""server.port=8080
spring.datasource.url=jdbc:postgresql://db:5432/shop
spring.datasource.password={v['props_pw']}
payment.api.key = {v['props_key']}
""",
        ".env.production": f"""APP_ENV=production
DATABASE_PASSWORD={v['env_pw']}
""",
        "Dockerfile": f"""FROM python:3.12-slim
ENV API_TOKEN={v['docker_token']}
ARG DB_PASSWORD={v['docker_pw']}
COPY . /app
CMD ["python", "-m", "app"]
""",
        "deploy/k8s/database.yaml": f"""apiVersion: v1
kind: Secret
metadata:
  name: shop-secrets
type: Opaque
data:
  db-password: {v['k8s_data']}
stringData:
  api-secret: {v['k8s_string']}
""",
        "scripts/deploy.sh": f"""#!/bin/sh
export AWS_ACCESS_KEY_ID={v['aws_id']}
export AWS_SECRET_ACCESS_KEY={v['shell_aws']}
export GITHUB_TOKEN={v['github']}
DB_PASSWORD={v['shell_pw']} ./migrate
curl -u admin:{v['curl_pw']} https://ci.example.com/api/deploy
""",
        "src/shop/clients.py": f'''"""Clients for the services the shop talks to."""
import os

API_KEY = "{v['py_key']}"
DATABASE_URL = "postgresql://shop:{v['py_url_pw']}@db.internal:5432/shop"
SLACK_TOKEN = "{v['slack']}"
STRIPE_KEY = "{v['stripe']}"
SENDGRID_API_KEY = "{v['sendgrid']}"
TWILIO_API_KEY = "{v['twilio']}"
MAILCHIMP_KEY = "{v['mailchimp']}"
OPENAI_API_KEY = "{v['openai']}"
GOOGLE_MAPS_KEY = "{v['google']}"
SESSION_JWT = "{v['jwt']}"
GITLAB_TOKEN = "{v['gitlab']}"
SIGNING_KEY = """{key_block}"""


def api_key() -> str:
    return os.environ.get("SHOP_API_KEY", API_KEY)
''',
        "web/src/client.js": f"""const apiKey = '{v['js_key']}';

export async function fetchOrders() {{
  return fetch('/api/orders', {{ headers: {{ Authorization: 'Bearer {v['js_bearer']}' }} }});
}}
""",
        "cmd/server/main.go": f"""package main

import "fmt"

func main() {{
	password := "{v['go_pw']}"
	fmt.Println(len(password))
}}
""",
        "src/lib.rs": f"""pub const API_SECRET: &str = "{v['rust_secret']}";

pub fn secret_len() -> usize {{
    API_SECRET.len()
}}
""",
        "config/connections.py": f'''STORAGE = "DefaultEndpointsProtocol=https;AccountName=shopdata;AccountKey={v['azure_key']};EndpointSuffix=core.windows.net"
MSSQL = "Server=sql.internal;Database=shop;User Id=shop;Password={v['mssql_pw']};"
REDIS_URL = "redis://:{v['redis_pw']}@cache.internal:6379/0"
BASIC = "https://deploy:{v['basic_auth']}@git.example.com/shop.git"
WEBHOOK_SIGNING = "{v['hex_secret']}"
ENCRYPTION = "{v['b64_secret']}"
''',
        "keys/deploy_key.pem": key_block,
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(v.values()) + [line for line in key_block.splitlines()[1:-1]]
