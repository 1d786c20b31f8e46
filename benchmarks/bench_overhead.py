"""What optcheck costs a training loop, a plain test suite, and a report, in one run.

    python benchmarks/bench_overhead.py [--repeat 21] [--load-runs 9] [--clock thread|wall] [--device cpu|cuda]

1. Recording: the seed's net (``mlp(1, 10, 1)`` on the quadratic data, SGD, batch 32,
   12 epochs: 384 steps) and a small CNN (two conv layers on 12x12 images, 64 steps),
   each run bare, with the default recording (``loss``, ``lr``) and with every series
   the recorder computes. One intra-op thread; the variants interleaved round by round
   (the order rotating), and each ratio is the median over rounds of recorded / bare
   in the same round. Targets: default <= 1.03, all series <= 1.10. Beside them, the
   floor of any recorder built on the optimizer's step hooks (:class:`Floor`): what the
   hooks, the reads and the copies alone cost, with nothing recorded.
2. The plain-suite load ratio: a 50-test suite with the plugin installed vs ``-p
   no:optcheck`` (benchmarks/bench_plugin_load.py). Target <= 1.05.
3. Pictures: every example golden under golden/examples (24 when the target was set)
   drawn as the report draws them (every other one with a planted 0.1% drift, so failing
   pictures are included), one after another on this thread, as a pytest process draws
   them; the first picture of each panel count includes making its figure (only one
   layout is warmed up). Target: 24 pictures <= 3 s (PNGs through matplotlib's savefig).

The clock is the thread's CPU time by default (``--clock thread``): with one intra-op
thread all of torch's work runs on it, and time spent waiting for a core another process
holds is not counted, so the ratios hold on a busy machine. ``--clock wall`` uses
``time.perf_counter``.

``--device cuda`` runs the recording part on the GPU, wall clock, with the GPU's queue
drained (``torch.cuda.synchronize()``) before each run starts and after it ends: a
recorder that synchronised per step would stall the queue there and show in the ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np
import torch

from pytest_optcheck.declare.problems import mlp, quadratic
from pytest_optcheck.run.record import HOOKED_SERIES, Recorder

DEFAULT = ("loss", "lr")
ALL = ("loss", *HOOKED_SERIES)
CLOCKS: dict[str, Callable[[], float]] = {"thread": time.thread_time, "wall": time.perf_counter}


@dataclasses.dataclass
class Setup:
    name: str
    make_model: Callable[[], torch.nn.Module]
    make_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer]
    inputs: torch.Tensor
    targets: torch.Tensor
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    batch_size: int
    epochs: int

    @property
    def steps(self) -> int:
        return self.epochs * -(-len(self.inputs) // self.batch_size)


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        )
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def setups() -> list[Setup]:
    data = quadratic(generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    gen = torch.Generator().manual_seed(2)
    images = torch.randn(512, 1, 12, 12, generator=gen)
    labels = torch.randint(0, 10, (512,), generator=gen)
    return [
        Setup("seed net", lambda: mlp(1, 10, 1), lambda m: torch.optim.SGD(m.parameters(), lr=0.01),
              data.inputs, data.targets, torch.nn.functional.mse_loss, 32, 12),
        Setup("small CNN", SmallCNN, lambda m: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9),
              images, labels, torch.nn.functional.cross_entropy, 32, 4),
    ]


class Floor:
    """The least any recorder built on the optimizer's step hooks must do, as a yardstick for
    :class:`Recorder`: a pre-step hook that appends the lr, and the logged loss read with
    ``item()`` in the loop (on an accelerator, kept detached; the default recording); with ``norms``, also the three copies the
    norm series need for their exact meaning — the starting point and the gradients before the
    step (one ``torch._foreach_copy_``) and the parameters after it (another) into buffers
    made once — with no reduction and no bookkeeping at all. Not a recorder: nothing is read."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, norms: bool) -> None:
        self.lrs: list[float] = []
        self.losses: list[float | torch.Tensor] = []
        self.params = list(model.parameters())
        hooks = [optimizer.register_step_pre_hook(self.pre)]
        if norms:
            self.before_and_grads = [torch.empty_like(p) for p in self.params * 2]
            self.after = [torch.empty_like(p) for p in self.params]
            hooks.append(optimizer.register_step_post_hook(self.post))
        self.norms = norms
        self.hooks = hooks

    def pre(self, optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        self.lrs.append(optimizer.param_groups[0]["lr"])
        if self.norms:
            with torch.no_grad():
                torch._foreach_copy_(self.before_and_grads, self.params + [p.grad for p in self.params])

    def post(self, optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.after, self.params)

    def log(self, loss: torch.Tensor) -> None:
        # item() on an accelerator would wait for its queue: there a recorder that does not
        # synchronise keeps the tensor instead.
        self.losses.append(loss.item() if loss.is_cpu else loss.detach())

    def close(self) -> None:
        for hook in self.hooks:
            hook.remove()


def timed_run(setup: Setup, state: dict, record: tuple[str, ...] | str | None, clock: Callable[[], float],
              device: torch.device) -> float:
    """One training run (the seed's loop), bare, recorded (``record``: the series) or with a
    :class:`Floor` (``record``: "floor" or "floor+norms"); the clock covers the loop and,
    when recorded, reading the trajectory."""
    model = setup.make_model().to(device)
    model.load_state_dict(state)
    optimizer = setup.make_optimizer(model)
    shuffle = torch.Generator().manual_seed(3)
    x, y = setup.inputs.to(device), setup.targets.to(device)
    n, size = len(setup.inputs), setup.batch_size
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = clock()
    floor = Floor(model, optimizer, norms=record == "floor+norms") if isinstance(record, str) else None
    rec = Recorder(optimizer, model=model, record=record).__enter__() if isinstance(record, tuple) else None
    for epoch in range(setup.epochs):
        if rec is not None:
            rec.epoch = epoch
        order = torch.randperm(n, generator=shuffle).to(device)
        for first in range(0, n, size):
            index = order[first:first + size]
            loss = setup.loss_fn(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if rec is not None:
                rec.log(loss=loss)
            elif floor is not None:
                floor.log(loss)
    if floor is not None:
        floor.close()
    if rec is not None:
        rec.close()
        assert len(rec.trajectory) == setup.steps
    sync()
    return clock() - start


def recording(repeat: int, clock: Callable[[], float], device: torch.device) -> None:
    print(f"recording on {device}: median over {repeat} interleaved rounds of recorded / bare, one intra-op thread")
    torch.set_num_threads(1)
    variants: dict[str, tuple[str, ...] | str | None] = {
        "bare": None, "default": DEFAULT, "all series": ALL, "floor": "floor", "floor+norms": "floor+norms"}
    names = list(variants)
    for setup in setups():
        torch.manual_seed(0)
        state = {k: v.clone() for k, v in setup.make_model().state_dict().items()}
        for record in variants.values():  # warm-up: lazy imports, allocator, first-call paths
            timed_run(setup, state, record, clock, device)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for r in range(repeat):
            for name in names[r % len(names):] + names[:r % len(names)]:
                times[name].append(timed_run(setup, state, variants[name], clock, device))
        bare = times["bare"]
        shown = {name: _figure(name, times[name], bare, setup.steps) for name in names[1:]}
        print(f"  {setup.name:9s} ({setup.steps} steps): bare {statistics.median(bare) / setup.steps * 1e6:6.1f} us/step"
              f"   {shown['default']}   {shown['all series']}")
        print(f"  {'':9s} {'':13s} the floor for either (see Floor): {shown['floor']}   {shown['floor+norms']}")
    print(f"  (default = {', '.join(DEFAULT)}; all series = {', '.join(ALL)})")


def _figure(name: str, times: list[float], bare: list[float], steps: int) -> str:
    """The median ratio to the bare run of the same round, and the microseconds a step added."""
    ratio = statistics.median(t / b for t, b in zip(times, bare))
    added = statistics.median(t - b for t, b in zip(times, bare)) / steps * 1e6
    return f"{name} {ratio:.3f}x (+{added:.1f} us/step)"


def plain_suite(runs: int) -> None:
    from bench_plugin_load import TESTS, run  # same folder

    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "pytest.ini").write_text("[pytest]\n")
        (project / "test_plain.py").write_text(TESTS)
        run(project)
        with_plugin, without = [], []
        for _ in range(runs):
            with_plugin.append(run(project))
            without.append(run(project, "-p", "no:optcheck"))
    ratio = statistics.median(a / b for a, b in zip(with_plugin, without))
    print(f"plain-suite load ratio: {ratio:.3f} (50 plain tests, plugin vs -p no:optcheck, "
          f"median of {runs} interleaved pairs, wall clock)")


def pictures(clock: Callable[[], float]) -> None:
    from pytest_optcheck.checks.golden_check import judge
    from pytest_optcheck.engine.trajectory import Trajectory
    from pytest_optcheck.golden.format import loads
    from pytest_optcheck.report.picture import write_picture

    outcomes = []
    for i, path in enumerate(sorted(glob.glob(str(ROOT / "golden" / "examples" / "*" / "*.json")))):
        text = Path(path).read_text()
        golden = loads(text)
        traj = golden.trajectory
        if i % 2:  # a planted drift from 60% of the run on: a failing picture
            drift = np.where(np.arange(len(traj)) >= 0.6 * len(traj), 1.001, 1.0)
            series = {n: traj[n] * drift.reshape((-1,) + (1,) * (traj[n].ndim - 1)) for n in traj.names}
            traj = Trajectory(series, traj.epoch, traj.batch, meta=traj.meta)
        outcomes.append((judge(dataclasses.replace(golden, trajectory=traj), text, path=path), path))
    with tempfile.TemporaryDirectory() as folder:
        write_picture(Path(folder) / "warm-up.png", *outcomes[0])  # matplotlib's import and font cache
        wall, cpu = time.perf_counter(), clock()
        for k, (outcome, path) in enumerate(outcomes):
            assert write_picture(Path(folder) / f"{k}.png", outcome, Path(path).name)
        cpu, wall = clock() - cpu, time.perf_counter() - wall
    print(f"pictures: {len(outcomes)} example pictures in {cpu:.2f} s ({cpu / len(outcomes) * 1000:.0f} ms each; "
          f"wall clock {wall:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21, help="interleaved rounds per training setup")
    parser.add_argument("--load-runs", type=int, default=9, help="interleaved pairs of plain-suite runs (0: skip)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default=None,
                        help="thread CPU time (default on cpu) or wall clock (default, and the only sense, on cuda)")
    parser.add_argument("--device", default="cpu", help="where the recording runs: cpu (default) or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available here")
    args.clock = args.clock or ("wall" if device.type == "cuda" else "thread")
    if device.type == "cuda" and args.clock != "wall":
        parser.error("--device cuda needs --clock wall: the GPU's time is not the thread's")
    clock = CLOCKS[args.clock]
    print(f"machine: {platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads available, "
          f"python {platform.python_version()}, torch {torch.__version__}; clock: {args.clock}")
    if device.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(device)}")
    recording(args.repeat, clock, device)
    if args.load_runs:
        plain_suite(args.load_runs)
    pictures(clock)


if __name__ == "__main__":
    main()
