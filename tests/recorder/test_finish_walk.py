"""The walk of finish_episode, from a real trace (bench/finish_walk.py): no recorder module is
called back while it is still on the stack, and the dataset's commit steps are taken by
shmpipe.recorder.finish alone, each once, in order (before, the supervisor's reply loop called
EarlyCommit, which called the writer)."""

from __future__ import annotations

from bench.finish_walk import PREFIX, record_finish

FINISH = PREFIX + "recorder.finish"


def test_finish_episode_crosses_the_recorder_without_calling_back(tmp_path):
    trace = record_finish(tmp_path / "dataset")
    recorder = [(m, s) for m, s in trace.reentries if m.startswith(PREFIX + "recorder.")]
    assert not recorder, f"called back while still on the stack: {recorder}"
    writer = [s for m, s in trace.reentries if m == PREFIX + "dataset.writer"]
    assert not writer, f"the writer was called back from its own commit: {writer}"
    top = [(m, f) for d, m, f in trace.calls if d == 1]
    assert top[0] == (PREFIX + "recorder.guards", "call")
    assert (FINISH, "finish") in top, top
    # the dataset's commit steps are taken by finish alone, in this order, each once
    parents = _parents(trace.calls)
    entered = [(parents[i], m.removeprefix(PREFIX), f) for i, (_, m, f) in enumerate(trace.calls)
               if m.startswith(PREFIX + "dataset.")]  # fmt: skip
    from_finish = [f for parent, _, f in entered if parent == FINISH]
    assert from_finish == ["stage_episode", "write_meta", "sync_early", "commit_staged"]
    others = {(p.removeprefix(PREFIX), m) for p, m, _ in entered if not p.startswith(PREFIX + "d")}
    assert others <= {("recorder.finish", "dataset.writer"),
                      ("recorder.finish", "dataset.episode_commit"),
                      ("recorder.take", "dataset.rows")}, others  # the take's rows: cleared
    # the steps of finish, in order: health and FinishEpisode before any file, the result last
    steps = [(m.removeprefix(PREFIX), f) for i, (_, m, f) in enumerate(trace.calls)
             if parents[i] == FINISH]  # fmt: skip
    assert steps[0] == ("recorder.supervisor", "supervise")
    assert steps.index(("recorder.take", "begin_finish")) < steps.index(
        ("dataset.writer", "stage_episode"))
    assert steps.index(("dataset.writer", "commit_staged")) < steps.index(
        ("recorder.take", "committed"))
    assert steps[-1] == ("recorder.results", "__init__"), steps[-6:]


def _parents(calls: list[tuple[int, str, str]]) -> dict[int, str]:
    """For each call, the module of the call it was made in."""
    stack: list[str] = []
    out = {}
    for i, (depth, module, _) in enumerate(calls):
        del stack[depth:]
        out[i] = stack[-1] if stack else ""
        stack.append(module)
    return out
