"""`taskpin dev`: the project's Slack emulator as a Slack-like web page on 127.0.0.1.

session.py starts the emulator, the real bot (Socket Mode to the emulator), a throwaway store and a
repository; page.py serves the page and turns its clicks into the emulator's user actions (the same
Socket Mode envelopes, acks, response_urls and view submissions the tests use); static/ holds the
dependency-free front end; screenshots.py renders the pictures in docs/images/.
"""
