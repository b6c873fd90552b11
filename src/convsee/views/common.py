"""What the views share: one input from what a caller gives, and the frame-time check."""

from __future__ import annotations

from ..errors import ConvseeError

__all__ = ["one_input", "check_frame_ms", "check_options", "arguments"]


def one_input(net, given, data=None, dataset=None, param: str = "input"):
    """The one Input for given: an INPUT spec ("sample:3", "photo.png"), an array, a Pillow
    image or an Input; data and dataset: where test:N and sample:D come from."""
    if isinstance(given, str):
        inputs = net.inputs([given], data, dataset)
    else:
        inputs = net._as_inputs(given)
    if len(inputs) != 1:
        raise ConvseeError(f"{{param}} is one input; got {len(inputs)}", param)
    return inputs[0]


def check_frame_ms(frame_ms: int) -> int:
    if isinstance(frame_ms, bool) or not isinstance(frame_ms, int) or not 20 <= frame_ms <= 60000:
        raise ConvseeError(f"{{param}} must be 20..60000, got {frame_ms}", "frame_ms")
    return frame_ms


def check_options(given, valid, where: str) -> None:
    """Refuse a keyword argument `where` does not take, naming it and the ones it takes (a
    TypeError from deep inside, or an option silently passed on, otherwise)."""
    unknown = [k for k in given if k not in valid]
    if unknown:
        raise ConvseeError(
            f"{where} takes no argument {{param}}; its options: {', '.join(sorted(valid))}",
            unknown[0],
        )


def arguments(*fns, but=("self", "net")) -> set:
    """The names of the arguments fns take by keyword (a view method and the function it
    passes **where on to), but those in `but`."""
    import inspect

    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {
        p.name
        for fn in fns
        for p in inspect.signature(fn).parameters.values()
        if p.kind in kinds and p.name not in but
    }
