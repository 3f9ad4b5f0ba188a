"""Settings that changed shape, rewritten to today's form in this one place, for command lines
and for the overrides recorded by runs of earlier versions (read again by resume= and eval run=)."""
# trainer.outer_optimizer was a string (adam | sgd); it and trainer.outer_scheduler are config
# groups now, whose options carry those names.
GROUP_KEYS = {"trainer.outer_optimizer": "trainer/outer_optimizer",
              "trainer.outer_scheduler": "trainer/outer_scheduler"}
# What a run recorded before these groups existed used, unless its overrides said otherwise.
EARLIER_CHOICES = {"trainer/outer_optimizer": "adam", "trainer/outer_scheduler": "constant"}


def upgraded(overrides: list[str]) -> list[str]:
    """`trainer.outer_optimizer=sgd` as the group choice `trainer/outer_optimizer=sgd` (sweeps
    such as `=adam,sgd` included); every other override unchanged."""
    return [_upgraded(line) for line in overrides]


def _upgraded(line: str) -> str:
    key, equals, value = line.partition("=")
    return f"{GROUP_KEYS[key]}={value}" if equals and key in GROUP_KEYS else line


def earlier_choices(recorded: dict, overrides: dict) -> dict:
    """The choices of a run whose `.hydra/hydra.yaml` names no option of a newer group: its
    (upgraded) override of that group, or what it used then. `overrides`: key → value."""
    return {group: recorded.get(group) or overrides.get(group, option) for group, option in EARLIER_CHOICES.items()}
