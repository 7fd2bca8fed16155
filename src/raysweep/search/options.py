"""A plug-in's options: each scheduler and sampler entry names a frozen dataclass of the keys it
reads, with their defaults, types and ranges, and checks its own cross-field rules.

    @dataclass(frozen=True)
    class Median:
        grace_period: int = option(1, low=1)            # epochs before it stops any trial
        min_samples_required: int = option(3, low=1)

Spec validation (`raysweep.spec.sections.plugin_options`) reads a section against the chosen
entry's dataclass: a key another entry reads is refused naming the ones that do, an unknown key
with did-you-mean; each value must fit its field's annotation (int, float, bool, str,
`Literal[...]`, `X | None`) and its `option` range, and the message states both
("must be an integer >= 1, got 0"). Then the entry's own check, if it has one, sees the options
and what else the spec fixes (a scheduler: the trials' epochs), and returns `Finding`s: problems,
or warnings that lower a value. The builder receives the options object as checked, so adding a
plug-in, keys and all, is its entry in its registry's file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


def option(default, *, low: float | None = None, high: float | None = None, strict: bool = False,
           what: str = ""):
    """A field of a plug-in's options: its default and the range validation holds it to.

    Args:
        default: what a spec that leaves the key out gets.
        low, high: the bounds, inclusive (`strict`: `low` itself is refused).
        what: how a message names a valid value where the type says too little
            ("an integer number of epochs"); it replaces the type's words, `or null` included.
    """
    return field(default=default, metadata={"low": low, "high": high, "strict": strict, "what": what})


@dataclass(frozen=True)
class NoOptions:
    """The options of a plug-in that reads none."""


@dataclass(frozen=True)
class Finding:
    """What an entry's own check says about one of its options (its key, without the section).

    A problem stops the spec; with `lowered_to`, a warning: the spec runs with that value instead.
    `because_of`: the other spec keys the rule read (`fixed.epochs`), so that a line names the
    `--set` that changed them.
    """

    key: str
    message: str
    because_of: tuple[str, ...] = ()
    lowered_to: object = None


def option_keys(options_type: type) -> tuple[str, ...]:
    """The keys a plug-in reads, in the order its dataclass declares them."""
    return tuple(f.name for f in fields(options_type))
