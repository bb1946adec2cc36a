"""Started by claude-agent-sdk as its `cli_path` (through a tiny sh shim, see client.py):
prepares the environment and process of the real Claude Code CLI, then becomes it (exec).

- drops every SLACK_* / TASKPIN_* variable the SDK merged in from taskpin's own environment,
  except those taskpin set on purpose for the agent (TASKPIN_CLAUDE_KEEP, comma-separated);
- makes the CLI the leader of a new process group and session (setsid), so taskpin can stop
  it and everything it started by pgid, and gives it PR_SET_PDEATHSIG (it dies with taskpin);
- writes its pid (the CLI's, after exec) to TASKPIN_CLAUDE_PIDFILE.

Standard library only: it runs as `python -I launcher.py`, outside taskpin's import path.
"""
import ctypes
import ctypes.util
import os
import signal
import sys

CONTROL = ("TASKPIN_CLAUDE_CLI", "TASKPIN_CLAUDE_KEEP", "TASKPIN_CLAUDE_PIDFILE")
SECRET_PREFIXES = ("SLACK_", "TASKPIN_")


def main() -> None:
    env = dict(os.environ)
    real = env["TASKPIN_CLAUDE_CLI"]
    keep = {name for name in env.get("TASKPIN_CLAUDE_KEEP", "").split(",") if name}
    pidfile = env.get("TASKPIN_CLAUDE_PIDFILE")
    for name in CONTROL:
        env.pop(name, None)
    env = {k: v for k, v in env.items() if not k.startswith(SECRET_PREFIXES) or k in keep}
    try:
        os.setsid()
    except OSError:
        pass   # already a session leader
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG
        except OSError:
            pass
    if pidfile:
        tmp = f"{pidfile}.tmp"
        with open(tmp, "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(tmp, pidfile)
    os.execvpe(real, [real, *sys.argv[1:]], env)


if __name__ == "__main__":
    main()
