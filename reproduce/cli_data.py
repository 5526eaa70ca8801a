"""`repro data status | fetch | unpack`: the datasets under the data root."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from . import datasets as data_mod
from .cli_options import DataRoot, Out, console, user_errors
from .config import ReproError

data_app = typer.Typer(help="Datasets: status, offline unpacking, online fetching.", no_args_is_help=True)


@data_app.command("status")
def data_status(data_root: DataRoot = None, out: Out = Path(".")) -> None:
    """Show which datasets are present under the data root."""
    root = data_mod.data_root(data_root, out)
    table = Table(title=f"datasets under {root}")
    for col in ("dataset", "present", "source", "note"):
        table.add_column(col)
    for r in data_mod.status(root):
        table.add_row(r["dataset"], "[green]yes[/]" if r["present"] else "[red]no[/]", r["source"], r["note"])
    console.print(table)


@data_app.command("fetch")
def data_fetch(name: Annotated[str, typer.Argument(help="mnist | fashion-mnist | cifar10 | cifar100")],
               data_root: DataRoot = None, out: Out = Path(".")) -> None:
    """Download a dataset through torchvision (needs internet)."""
    with user_errors():
        data_mod.info(name)
        data_mod.fetch(name, data_mod.data_root(data_root, out))


@data_app.command("unpack")
def data_unpack(source: Annotated[Optional[Path], typer.Option("--from", help="folder with the offline "
                                                     "archives and SHA256SUMS [default: ../shared/datasets]")] = None,
                data_root: DataRoot = None, out: Out = Path(".")) -> None:
    """Unpack the offline datasets (MNIST and Fashion-MNIST idx files, CIFAR-10 JPEG) into the data root.

    Only the forms the figures read are unpacked; each file is checked against SHA256SUMS first."""
    with user_errors():
        src = data_mod.offline_source(source)
        if src is None:
            raise ReproError(f"no offline datasets (a folder with SHA256SUMS) at {source or '../shared/datasets'}; "
                             "use --from DIR, or `repro data fetch NAME` online")
        root = data_mod.data_root(data_root, out)
        for name in data_mod.OFFLINE:
            if data_mod.offline(name, src):
                with console.status(f"unpacking {name}"):
                    console.print(data_mod.unpack(name, src, root), highlight=False)
