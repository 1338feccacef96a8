"""The tooling's commands in the ``extproc`` CLI: ``redteam``, ``bench`` and ``train``.

Registered as the ``extproc.commands`` entry point (pyproject.toml), which the serving CLI loads
when this package is installed; the serving package never imports it.
"""
from __future__ import annotations

import argparse
import importlib

# extproc train KIND ARGS...: the training entry points, each its own ``python -m`` module too.
TRAINERS = {
    "attack": ("extproc_lab.attack.train", "train the attack model (models/attack.onnx)"),
    "attack-eval": ("extproc_lab.attack.evaluate", "evaluate the attack model with whole sources held out"),
    "bot": ("extproc_lab.bot.train", "train the bot model (models/bot.onnx)"),
    "prompt-injection": ("extproc_lab.ai.train_injection",
                         "train the prompt-injection model on ../shared/data/llm and judge it with each source held out"),
}


def add_commands(commands: argparse._SubParsersAction) -> None:
    from extproc_lab.bench.suite import add_arguments as add_bench_arguments
    from extproc_lab.redteam.command import add_arguments as add_redteam_arguments

    redteam = commands.add_parser("redteam", help="replay attacks, mutate payloads, probe smuggling, verify reach")
    add_redteam_arguments(redteam)
    redteam.set_defaults(run=_redteam)

    bench = commands.add_parser("bench", help="measure latency per layer, through Envoy, memory and workers")
    add_bench_arguments(bench)
    bench.set_defaults(run=_bench)

    train = commands.add_parser(
        "train", help="retrain or evaluate a model (needs the train extra)",
        description="; ".join(f"{kind}: {summary} (python -m {module})" for kind, (module, summary) in TRAINERS.items()))
    train.add_argument("kind", choices=TRAINERS)
    train.add_argument("arguments", nargs=argparse.REMAINDER, help="the trainer's arguments (KIND --help lists them)")
    train.set_defaults(run=_train)


def _redteam(args: argparse.Namespace) -> int:
    from extproc_lab.redteam import command as redteam_command

    return redteam_command.run(args)


def _bench(args: argparse.Namespace) -> int:
    from extproc.observability import logs
    from extproc_lab.bench import suite

    logs.setup("warning")  # the layers' own logs (e.g. deny lines) would drown the tables
    return suite.run(args)


def _train(args: argparse.Namespace) -> int:
    module, _ = TRAINERS[args.kind]
    return importlib.import_module(module).main(args.arguments)
