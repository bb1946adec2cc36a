#!/usr/bin/env python3
"""The demo's agent: speaks taskpin's command protocol, asks one question, writes a file."""
import json
import sys
import time


def emit(**event) -> None:
    print(json.dumps(event), flush=True)


def main() -> None:
    prompt = json.loads(sys.stdin.readline()).get("text", "")
    pause = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    if "link-guide" in sys.argv[2:]:   # the demo's second task: no questions
        emit(type="activity", tool="Edit", detail="README.md")
        with open("README.md", "a") as f:
            f.write("\nNew here? Read CONTRIBUTING.md.\n")
        emit(type="finished", summary="Linked CONTRIBUTING.md from README.md.")
        return
    emit(type="output", text=f"Reading the task: {prompt}")
    emit(type="activity", tool="Read", detail="README.md")
    if "list-docs" in sys.argv[2:]:   # the demo's policy allows this one by rule: no question in Slack
        emit(type="intervention", id="ls", kind="permission", prompt="May I list the docs?", tool="Bash",
             detail="ls docs")
        json.loads(sys.stdin.readline())
    time.sleep(pause)
    emit(type="intervention", id="tone", kind="question", prompt="Which tone should CONTRIBUTING.md take?",
         options=[{"id": "friendly", "label": "Friendly"}, {"id": "formal", "label": "Formal"}])
    answer = json.loads(sys.stdin.readline())
    tone = answer.get("option") or answer.get("text") or "friendly"
    emit(type="activity", tool="Write", detail="CONTRIBUTING.md")
    with open("CONTRIBUTING.md", "w") as f:
        f.write(f"# Contributing ({tone})\n\n1. Open an issue.\n2. Send a pull request.\n")
    emit(type="usage", input_tokens=1830, output_tokens=412, cost_usd=0.021)
    time.sleep(pause)
    emit(type="finished", summary=f"Wrote CONTRIBUTING.md in a {tone} tone.")


if __name__ == "__main__":
    main()
