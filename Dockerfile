# taskpin: the core and the Slack bot in one process.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 taskpin
WORKDIR /app
COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY bot ./bot
COPY manifests ./manifests
RUN pip install --no-cache-dir .

USER taskpin
WORKDIR /home/taskpin
ENV TASKPIN_DATABASE_URL=sqlite+aiosqlite:////home/taskpin/data/taskpin.db \
    TASKPIN_WORKSPACES_DIR=/home/taskpin/data/worktrees \
    TASKPIN_LOG_DIR=/home/taskpin/data/logs \
    TASKPIN_HTTP_PORT=3000
RUN mkdir -p /home/taskpin/data
VOLUME ["/home/taskpin/data"]
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${TASKPIN_HTTP_PORT}/healthz" || exit 1

CMD ["taskpin", "run"]
