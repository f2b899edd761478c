"""A toy study task registered only by the tests: teachers and the students that need them.

Each seed has a teacher run, whose artefact ``weights`` (a tensor) and metric ``total`` a student run
reads through ``needs``. The plan lists students *before* their teachers, so the engine's ordering is what
makes it work; teachers sleep a little so that, with two workers, a student would start too early if the
engine did not wait for its teacher to be stored. Module-level, so spawned workers can import it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from labelsmooth.study.tasks import Method, Metric, RunRecord, RunSpec, Task, register


@dataclass(frozen=True)
class ToySection:
    scale: float = 1.0
    teacher_sleep: float = 0.0


def _no_objective(param, **context):
    return None


class ToyChainTask(Task):
    name = "toy_chain"
    summary = "a teacher per seed and a student that reads the teacher's stored weights (tests only)"
    runtime = "4 runs, well under a second"
    config_cls = ToySection
    metrics = (
        Metric("total", "total", better="higher", cli=True),
        Metric("student_total", "student", cli=True),
    )
    methods: ClassVar[dict[str, Method]] = {
        "teacher": Method("teacher", None, _no_objective, label=lambda p: "teacher"),
        "student": Method("student", None, _no_objective, label=lambda p: "student"),
    }

    def validate(self, section):
        if section.scale <= 0:
            raise ValueError(f"Expected `toy_chain.scale` > 0, got {section.scale}.")

    def plan(self, cfg, datasets):
        sec = cfg.section
        teachers = {
            s: RunSpec({"method": "teacher", "param": None, "seed": s},
                       {"task": self.name, "role": "teacher", "seed": s, "scale": sec.scale})
            for s in cfg.seeds
        }  # fmt: skip
        students = [
            RunSpec({"method": "student", "param": None, "seed": s},
                    {"task": self.name, "role": "student", "seed": s, "teacher": t.run_hash},
                    needs=(t.run_hash,))
            for s, t in teachers.items()
        ]  # fmt: skip
        return students + list(teachers.values())  # students first: the engine must reorder

    def execute(self, spec, ctx, needs):
        sec = ctx.section
        seed = spec.axes["seed"]
        if spec.axes["method"] == "teacher":
            time.sleep(sec.teacher_sleep)
            w = torch.arange(3, dtype=torch.float64) * (seed + 1) * sec.scale
            return RunRecord({"total": float(w.sum()), "pid": os.getpid()}, artefacts={
                "weights": w, "logits": np.full((2, 2), float(seed))})  # fmt: skip
        (teacher,) = needs.values()
        w = teacher.artefacts["weights"]
        assert teacher.metrics["total"] == float(w.sum())
        return {"metrics": {"student_total": 2 * float(w.sum()), "total": None,
                            "teacher_logits": float(teacher.artefacts["logits"].sum()), "pid": os.getpid()}}  # fmt: skip


TOY = register(ToyChainTask(), replace=True)
