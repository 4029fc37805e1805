"""GPU 0's darknet batch number for every training-loop iteration of a ``-gpus`` run
(standard library only; generated ``--multigpu trace`` modules carry their own version,
the golden ``mgpu_*`` traces keep both equal to darknet).

Counts are in *batches* (``seen / images_per_iteration``). One loop iteration is one call
of darknet's ``train_network`` (1 GPU) or ``train_networks`` (n GPUs). Rules, per fork:

* ``alexeyab``/``hankai``: GPU 0 adds a batch to ``seen`` and evaluates the LR at
  ``b = seen``; its loop counter ``cur_iteration`` grows by 1, then by n-1 more, and
  ``seen`` is set to the counter; when the counter is a multiple of 4 the weights are
  synced and ``seen`` grows by 4(n-1). A weight save (every 1000 or 10000 iterations, and
  the ``_last`` save every 100) resets ``seen`` to the counter. The loop runs while the
  counter is below ``max_batches``. alexeyab uses the 10000 save interval when
  ``max_batches >= 10000``, hankai when ``max_batches > 10000``.
* ``pjreddie``: ``b = seen + 1``; when ``b`` is a multiple of 4 (n > 1) ``seen`` grows by
  4(n-1) more; saves do not touch ``seen``; the loop runs while ``seen < max_batches``.
* ``hankai`` with ``scratch`` (no weights file, n > 1): phase 1 trains on one GPU and stops
  when the counter equals ``burn_in``; phase 2 restarts on all GPUs from there.
"""

from __future__ import annotations

from typing import NamedTuple

FORK_PJREDDIE = 1
FORK_HANKAI = 2
SYNC_INTERVAL = 4


class MgpuConfig(NamedTuple):
    """What the counters depend on. ``fork`` is a ``FORK_*`` code (0, 1, 2)."""

    fork: int
    ngpus: int
    max_batches: int
    burn_in: int = 0
    scratch: bool = False


class MgpuState(NamedTuple):
    """Counters of GPU 0 between two loop iterations (all plain ints; picklable).

    ``iteration``: loop iterations done; ``phase``: 1, or 2 after hankai's single-GPU
    burn-in; ``seen``: GPU 0's ``seen`` in batches; ``counter``: GPU 0's ``cur_iteration``
    (alexeyab/hankai; for pjreddie the loop tests ``seen`` and this equals it);
    ``iter_save``/``iter_save_last``: counters at the last weight saves.
    """

    iteration: int
    phase: int
    seen: int
    counter: int
    iter_save: int
    iter_save_last: int


def save_interval(fork: int, max_batches: int) -> int:
    """Iterations between numbered weight saves (alexeyab/hankai)."""
    if fork == FORK_HANKAI:
        return 1000 if max_batches <= 10000 else 10000
    return 1000 if max_batches < 10000 else 10000


def _split(cfg: MgpuConfig) -> bool:
    """hankai from scratch: burn-in on one GPU (phase 1), then all (phase 2)."""
    return cfg.fork == FORK_HANKAI and cfg.scratch and cfg.ngpus > 1


def mgpu_start(cfg: MgpuConfig) -> MgpuState:
    """State before the first loop iteration of a run that starts at ``seen = 0``."""
    return MgpuState(0, 1, 0, 0, 0, 0)


def mgpu_step(cfg: MgpuConfig, state: MgpuState) -> tuple[int, MgpuState] | None:
    """One loop iteration: ``(b, next_state)``, ``b`` being GPU 0's batch number for its
    weight update (what the LR is evaluated at), or None when the loop has ended."""
    out, after = _run(cfg, state, 1)
    return (out[0], after) if out else None


def mgpu_batches(
    cfg: MgpuConfig, iterations: int | None = None
) -> tuple[list[int], list[int], MgpuState]:
    """GPU 0's batch number and phase for every loop iteration (until darknet's loop
    ends, or ``iterations``), and the final state: :func:`mgpu_step` until None, fast."""
    limit = -1 if iterations is None else iterations
    batches: list[int] = []
    phases: list[int] = []
    state = mgpu_start(cfg)
    while limit != len(batches):
        out, after = _run(cfg, state, -1 if limit < 0 else limit - len(batches))
        if not out:  # darknet's loop has ended
            break
        batches.extend(out)
        state = after  # the state only moves to phase 2 once an iteration runs there
        phases.extend([after.phase] * len(out))
    return batches, phases, state


def _run(cfg: MgpuConfig, state: MgpuState, left: int) -> tuple[list[int], MgpuState]:
    """Up to ``left`` (-1: all) iterations from ``state`` while darknet's loop runs (its
    ``seen`` or counter below ``max_batches``): the batches, and the state after."""
    if state.phase == 1 and _split(cfg) and state.counter == cfg.burn_in:
        c = state.counter  # hankai scratch: phase 1 ends at the top of the loop
        state = MgpuState(state.iteration, 2, c, c, c, c)
    n = 1 if state.phase == 1 and _split(cfg) else cfg.ngpus
    if cfg.fork != FORK_PJREDDIE:
        return _alexeyab_run(cfg, state, n, left)
    out: list[int] = []
    seen, jump, maxb = state.seen, SYNC_INTERVAL * (n - 1), cfg.max_batches
    while seen < maxb and left != len(out):
        seen += 1
        out.append(seen)
        if seen % SYNC_INTERVAL == 0:
            seen += jump
    it = state.iteration + len(out)
    return out, state._replace(iteration=it, seen=seen, counter=seen)


def _alexeyab_run(
    cfg: MgpuConfig, state: MgpuState, n: int, left: int
) -> tuple[list[int], MgpuState]:
    out: list[int] = []
    _, phase, seen, counter, iter_save, last = state
    every = save_interval(cfg.fork, cfg.max_batches)
    jump, top = SYNC_INTERVAL * (n - 1), cfg.max_batches
    if phase == 1 and _split(cfg) and counter < cfg.burn_in:  # hankai's 1-GPU burn-in
        top = min(top, cfg.burn_in)
    while counter < top and left != len(out):
        out.append(seen + 1)
        counter += n
        seen = counter + jump if counter % SYNC_INTERVAL == 0 else counter
        if counter >= iter_save + every or counter % every == 0:
            iter_save = counter
            seen = counter
        if counter >= last + 100 or (counter % 100 == 0 and counter > 1):
            last = counter
            seen = counter
    it = state.iteration + len(out)
    return out, MgpuState(it, phase, seen, counter, iter_save, last)
