"""tinyml zoo: the MLPerf Tiny models, their size and cost, and where their early exit reads."""
from __future__ import annotations

from toolchain.cli.base import Command, command
from toolchain.report.table import format_table


@command("zoo")
class Zoo(Command):
    help = "list the model zoo: task, input, classes, folded parameters, MACs, early-exit point"

    def run(self, args):
        from toolchain import zoo
        from toolchain.zoo.exits import EXIT_POINTS

        rows = []
        for name, entry in zoo.MODELS.items():
            model = entry.build()
            point = EXIT_POINTS.get(name)
            exit_at = f"{point.feature_layer} ({'x'.join(map(str, point.feature_shape))})" if point else "-"
            rows.append([name, entry.task, "x".join(map(str, entry.input_shape)), entry.num_classes or "-",
                         zoo.folded_param_count(model), zoo.count_macs(model), exit_at, entry.description])
        print(format_table(["model", "task", "input", "classes", "params (folded)", "MACs", "early exit reads",
                            "description"], rows))
        return 0
