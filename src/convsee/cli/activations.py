"""`convsee activations`: every chosen layer's output as arrays in one .npz."""

from __future__ import annotations

from .options import Formatter, add_inputs_and_model, add_layers, network, out_file_ok, write_file

HELP = "save layers' outputs as arrays (.npz keyed by layer name, batch axis first)"


def add(sub) -> None:
    ac = sub.add_parser("activations", help=HELP, description=HELP, formatter_class=Formatter)
    add_inputs_and_model(ac, nargs="+", default_help="none: give at least one")
    add_layers(ac, "all", "layers to save: names from `convsee layers`, NAME#k, globs, all")
    ac.add_argument("-o", "--out", required=True, metavar="OUT.npz", help="the .npz to write")
    ac.set_defaults(func=run)


def run(a) -> int:
    from ..views.activations import activations_npz

    out_file_ok(a.out, "-o", ".npz")  # before the work, and creating nothing
    saved = activations_npz(network(a), a.inputs, a.layers, a.data, a.dataset)
    write_file(a.out, saved.npz())
    print(f"wrote {a.out}: {saved.describe()}")
    return 0
