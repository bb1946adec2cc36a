#!/usr/bin/env python3
"""A fake agent for tests, speaking taskpin's command protocol (docs/command-protocol.md).

Usage: scripted_agent.py [--prompt-arg] [--no-prompt]
  default        the first stdin line is the prompt (a JSON prompt line or plain text)
  --prompt-arg   the prompt is the last argv element (prompt_via = "arg"); stdin is not read
  --no-prompt    read no prompt at all

The script comes from env SCRIPTED_AGENT_SCRIPT: a JSON list of steps, or the path of a JSON
file holding one. Without a script the agent emits {"type":"finished","summary":"done"}.
Every stdin line read is appended (verbatim, one per line) to the file named by env
SCRIPTED_AGENT_LOG if set. Steps (one key each, run in order):

  {"emit": {...}}                 print the object as one JSON line
  {"print": "raw text"}           print raw text (may contain newlines)
  {"print_bytes": N}              print one line of N 'x' characters (huge-line tests)
  {"stderr": "text"}              write a line to stderr
  {"sleep": 0.2}                  sleep seconds
  {"ask": {...intervention...}}   emit {"type":"intervention", ...} and wait for the answer line;
                                  then emit output "got answer: <the raw line>"
  {"ask_marker": "question"}      print "[INTERVENTION_REQUIRED] question", read one plain line,
                                  emit output "got answer: <line>"
  {"read_line": true}             read one stdin line, emit output "got line: <line>"
  {"wait_message": true}          read stdin until a {"type":"message"} line,
                                  emit output "got message: <text>"
  {"echo_answers_to": "f.jsonl"}  also append every answer/message line received to this file
  {"echo_prompt": true}           emit output "prompt: <prompt text>"
  {"echo_env": ["NAME", ...]}     emit output "env NAME=<value>" (or "env NAME unset") each
  {"echo_argv": true}             emit output "argv: <json list of argv[1:]>"
  {"write_file": {"path": "x.txt", "content": "..."}}   relative to cwd, dirs created
  {"spawn_child_sleep": 60}       start a grandchild `sleep 60`; its pid goes to grandchild.pid
  {"spawn_child_sleep": {"seconds": 60, "pid_file": "p.pid"}}
  {"ignore_sigterm": true}        ignore SIGTERM from now on ({"ignore_sigint": true} likewise)
  {"write_pid": "agent.pid"}      write this process's pid to a file
  {"finish": "summary"}           shorthand for emit finished
  {"exit": N}                     exit with code N now
  {"hang": true}                  sleep forever
  {"close_stdin": true}           close stdin (taskpin's next write to it fails), keep running

When the script ends without "exit" the agent exits 0. EOF on stdin while waiting for a line
exits with code 3 and "stdin closed" on stderr.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

LOG = os.environ.get("SCRIPTED_AGENT_LOG")
answers_file: str | None = None


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def output(text: str) -> None:
    emit({"type": "output", "text": text})


def read_line() -> str:
    line = sys.stdin.readline()
    if not line:
        sys.stderr.write("stdin closed\n")
        sys.stderr.flush()
        sys.exit(3)
    line = line.rstrip("\n")
    if LOG:
        with open(LOG, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    return line


def record_answer(line: str) -> None:
    if answers_file:
        with open(answers_file, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def load_script() -> list:
    raw = os.environ.get("SCRIPTED_AGENT_SCRIPT", "").strip()
    if not raw:
        return [{"emit": {"type": "finished", "summary": "done"}}]
    if not raw.startswith("["):
        with open(raw, encoding="utf-8") as fh:
            raw = fh.read()
    return json.loads(raw)


def prompt_text(line: str) -> str:
    try:
        obj = json.loads(line)
    except ValueError:
        return line
    if isinstance(obj, dict) and obj.get("type") == "prompt":
        return str(obj.get("text", ""))
    return line


def run_step(step: dict, prompt: str | None) -> None:
    global answers_file
    (name, arg), = step.items()
    if name == "emit":
        emit(arg)
    elif name == "print":
        sys.stdout.write(str(arg) + "\n")
        sys.stdout.flush()
    elif name == "print_bytes":
        sys.stdout.write("x" * int(arg) + "\n")
        sys.stdout.flush()
    elif name == "stderr":
        sys.stderr.write(str(arg) + "\n")
        sys.stderr.flush()
    elif name == "sleep":
        time.sleep(float(arg))
    elif name == "ask":
        emit({"type": "intervention", **arg})
        line = read_line()
        record_answer(line)
        output(f"got answer: {line}")
    elif name == "ask_marker":
        sys.stdout.write(f"[INTERVENTION_REQUIRED] {arg}\n")
        sys.stdout.flush()
        line = read_line()
        record_answer(line)
        output(f"got answer: {line}")
    elif name == "read_line":
        output(f"got line: {read_line()}")
    elif name == "wait_message":
        while True:
            line = read_line()
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and obj.get("type") == "message":
                record_answer(line)
                output(f"got message: {obj.get('text', '')}")
                break
    elif name == "echo_answers_to":
        answers_file = str(arg)
    elif name == "echo_prompt":
        output(f"prompt: {prompt}")
    elif name == "echo_env":
        for var in arg:
            value = os.environ.get(var)
            output(f"env {var}={value}" if value is not None else f"env {var} unset")
    elif name == "echo_argv":
        output("argv: " + json.dumps(sys.argv[1:]))
    elif name == "write_file":
        path = arg["path"]
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(arg.get("content", ""))
    elif name == "spawn_child_sleep":
        seconds, pid_file = (arg, "grandchild.pid") if not isinstance(arg, dict) else (
            arg.get("seconds", 60), arg.get("pid_file", "grandchild.pid"))
        child = subprocess.Popen(
            ["sleep", str(seconds)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        with open(pid_file, "w", encoding="utf-8") as fh:
            fh.write(str(child.pid))
    elif name == "ignore_sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif name == "ignore_sigint":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    elif name == "write_pid":
        with open(arg, "w", encoding="utf-8") as fh:
            fh.write(str(os.getpid()))
    elif name == "finish":
        emit({"type": "finished", "summary": str(arg)})
    elif name == "exit":
        sys.stdout.flush()
        sys.exit(int(arg))
    elif name == "close_stdin":
        os.close(0)
    elif name == "hang":
        while True:
            time.sleep(3600)
    else:
        sys.stderr.write(f"scripted_agent: unknown step {name!r}\n")
        sys.exit(2)


def main() -> int:
    args = sys.argv[1:]
    prompt: str | None = None
    if "--prompt-arg" in args:
        prompt = args[-1]
    elif "--no-prompt" not in args:
        prompt = prompt_text(read_line())
    for step in load_script():
        run_step(step, prompt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
