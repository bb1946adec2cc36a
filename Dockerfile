# taskpin: the core and the Slack bot in one process. How to run it: README, "Operating it".
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 # Mounted repositories belong to a host uid; git must still work in them.
 && git config --system --add safe.directory '*'

RUN useradd --create-home --uid 10001 taskpin
WORKDIR /app
COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY bot ./bot
COPY manifests ./manifests
# Editable: taskpin reads manifests/ (the scopes `taskpin check` compares) from next to its code.
RUN pip install --no-cache-dir -e .

USER taskpin
WORKDIR /home/taskpin
# Everything taskpin writes lives in the volume; it reads /home/taskpin/taskpin.toml (mount it).
ENV TASKPIN_DATABASE_URL=sqlite+aiosqlite:////home/taskpin/data/taskpin.db \
    TASKPIN_WORKSPACES_DIR=/home/taskpin/data/worktrees \
    TASKPIN_LOG_DIR=/home/taskpin/data/logs \
    TASKPIN_HTTP_PORT=3000
# Created by the image's user, so a new named volume mounted here is writable by it.
RUN mkdir -p /home/taskpin/data
VOLUME ["/home/taskpin/data"]
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${TASKPIN_HTTP_PORT}/healthz" || exit 1

# SIGTERM (docker stop) stops taskpin cleanly; it is PID 1 here and handles it itself.
STOPSIGNAL SIGTERM
CMD ["taskpin", "run"]
