"""Which rate limits a request meets; shared by every API process through Redis (GCRA, api/gate.py),
applied by the dependencies in api/deps.py and by the intake.

- commands (POST deposits, withdrawals, orders): per user and per client IP;
- every other authenticated route (reads, logout, admin): per user, with its own higher limit;
- anonymous routes (assets): per client IP; registration and login have their stricter limits per IP
  and, for login, per username. Health and metrics are left out: probes and scrapers must get an answer
  even while Redis is down, and they poll from a handful of addresses anyway.
"""

from __future__ import annotations

from fastapi import Request

from api.gate import Limit
from infra.settings import Settings


def client_ip(request: Request) -> str:
    # Behind a proxy, uvicorn's --proxy-headers/--forwarded-allow-ips sets this from X-Forwarded-For
    # for trusted proxies only; a client cannot choose its own address here.
    return request.client.host if request.client else "unknown"


def command_limits(settings: Settings, user_id: str, ip: str) -> list[Limit]:
    window = settings.rate_limit_window_s
    return [
        Limit("ip", ip, settings.rate_limit_per_ip, window),
        Limit("user", user_id, settings.rate_limit_per_user, window),
    ]


def read_limits(settings: Settings, user_id: str) -> list[Limit]:
    return [Limit("reads", user_id, settings.rate_limit_reads_per_user, settings.rate_limit_window_s)]


def auth_limits(settings: Settings, ip: str, username: str | None = None) -> list[Limit]:
    window = settings.auth_rate_limit_window_s
    limits = [Limit("auth-ip", ip, settings.auth_rate_limit_per_ip, window)]
    if username is not None:
        limits.append(Limit("login-user", username.lower(), settings.auth_rate_limit_per_username, window))
    return limits
