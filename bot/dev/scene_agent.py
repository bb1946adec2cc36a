#!/usr/bin/env python3
"""An agent for the pictures and the browser tests: the prompt's first word picks what it does.

    permission …  asks to run a command (a permission request), then writes a file
    choices …     asks a multi-select question (checkboxes), then writes a file
    hold …        keeps working until it is stopped (the task stays in progress)
    fail …        fails at once, not worth retrying
    guide …       (or anything else) asks which tone to use, like the demo agent, then writes two files

It speaks taskpin's command protocol (JSON lines on stdout, answers on stdin).
"""
import json
import os
import sys
import time


def emit(**event) -> None:
    print(json.dumps(event), flush=True)


def answer() -> dict:
    line = sys.stdin.readline()
    return json.loads(line) if line.strip() else {}


def write(path: str, text: str) -> None:
    emit(type="activity", tool="Write", detail=path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main() -> None:
    prompt = json.loads(sys.stdin.readline()).get("text", "")
    word = (prompt.split() or [""])[0].strip(":,.").lower()
    task = prompt.split(None, 1)[1] if word in ("permission", "choices", "hold", "fail", "guide") and " " in prompt else prompt
    emit(type="output", text=f"Reading the task: {task}")
    emit(type="activity", tool="Read", detail="README.md")
    if word == "fail":
        emit(type="failed", error="the test database is unreachable (connection refused on 127.0.0.1:5433)",
             retryable=False)
        return
    if word == "hold":
        emit(type="activity", tool="Bash", detail="pytest -q tests/")
        while sys.stdin.readline():   # until taskpin stops it (EOF)
            pass
        return
    if word == "permission":
        emit(type="intervention", id="migrate", kind="permission", tool="Bash",
             prompt="May I run the database migration on the dev database?",
             detail="alembic upgrade head && python3 -m scripts.seed --dev")
        reply = answer()
        write("MIGRATION.md", "# Migration\n\nApplied `alembic upgrade head`.\n"
              if reply.get("option") == "allow" else "# Migration\n\nNot applied: " + (reply.get("text") or "denied") + "\n")
    elif word == "choices":
        emit(type="intervention", id="targets", kind="question", multi_select=True,
             prompt="Which platforms should the release notes cover?",
             options=[{"id": "linux", "label": "Linux"}, {"id": "macos", "label": "macOS"},
                      {"id": "windows", "label": "Windows", "description": "needs the new installer"}])
        chosen = answer().get("options") or []
        write("RELEASE_NOTES.md", "# Release notes\n\n" + "".join(f"- {c}\n" for c in chosen))
    else:
        emit(type="intervention", id="tone", kind="question", prompt="Which tone should the guide take?",
             options=[{"id": "friendly", "label": "Friendly"}, {"id": "formal", "label": "Formal"}])
        tone = answer().get("option") or "friendly"
        write("CONTRIBUTING.md", f"# Contributing ({tone})\n\n1. Open an issue.\n2. Send a pull request.\n"
              "3. Run the tests: `python3 -m pytest`.\n")
        write("docs/review.md", "# Review checklist\n\n- tests pass\n- docs updated\n")
    emit(type="usage", input_tokens=2310, output_tokens=604, cost_usd=0.034)
    time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0.1)
    emit(type="finished", summary="Done; see the diff.")


if __name__ == "__main__":
    main()
