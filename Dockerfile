# syntax=docker/dockerfile:1
# One image for every ledgerflow process (api, consumers, price producer, provision, operator CLI);
# compose.yaml picks the command. Runtime dependencies only: `uv sync --no-dev` leaves out the dev and
# local groups (pytest, the Tansu broker wheel, ...).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# uv from PyPI, pinned to the version that wrote uv.lock.
RUN pip install --no-cache-dir "uv==0.13.9"

WORKDIR /app

# Dependencies first: this layer is rebuilt only when pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# Then the project itself: one COPY per package (a COPY of several directories would merge their
# contents into /app). Keep in step with [tool.hatch.build.targets.wheel] packages in pyproject.toml;
# tests/unit/test_compose.py checks it.
COPY api/ ./api/
COPY consumers/ ./consumers/
COPY infra/ ./infra/
COPY producers/ ./producers/
COPY schemas/ ./schemas/
RUN uv sync --frozen --no-dev

RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home ledgerflow
USER ledgerflow

ENV PATH=/app/.venv/bin:$PATH
EXPOSE 8080
CMD ["uvicorn", "api.app:create_app", "--factory", "--no-access-log", "--timeout-graceful-shutdown", "5", "--host", "0.0.0.0", "--port", "8080"]
