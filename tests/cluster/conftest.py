"""Fixtures for the multi-process tests: the emulator (with the board channel) in this process,
a fresh PostgreSQL database, and the cluster of real taskpin processes around them."""
from __future__ import annotations

import pytest

from bot.emulator import SlackEmulator

from .harness import BOARD, Cluster


@pytest.fixture
async def emu():
    async with SlackEmulator(rate_limits=True, ack_timeout=3.0) as e:
        e.add_channel(BOARD, "taskpin-cluster")
        yield e


@pytest.fixture
async def cluster_factory(emu, tmp_path, git_repo, pg_url):
    made: list[Cluster] = []

    def make(agents: dict, **options) -> Cluster:
        cluster = Cluster(emu, tmp_path, git_repo, pg_url, agents, **options)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        await cluster.stop_all()
