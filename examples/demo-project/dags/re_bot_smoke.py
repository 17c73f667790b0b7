"""Smoke test DAG triggered by re-bot's verify step: runs on the remote agent's default queue,
pushes an XCom through the object-storage backend and reads it back."""
from __future__ import annotations

from airflow.sdk import dag, task


@dag(dag_id="re_bot_smoke", schedule=None, catchup=False, tags=["re-bot"])
def re_bot_smoke():
    @task(queue="default")
    def produce() -> str:
        return "x" * 2048

    @task(queue="default")
    def consume(value: str) -> int:
        assert len(value) == 2048
        return len(value)

    consume(produce())


re_bot_smoke()
