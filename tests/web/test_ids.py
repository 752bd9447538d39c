"""Component ids: one class per feature in ids.py, each id starting with its feature's prefix."""

import inspect

import ids


def feature_classes():
    return [cls for _, cls in inspect.getmembers(ids, inspect.isclass) if cls.__module__ == "ids"]


def id_values(cls):
    return {name: value for name, value in vars(cls).items() if name.isupper() and name != "PREFIX"}


def test_every_id_starts_with_its_feature_prefix():
    for cls in feature_classes():
        for name, value in id_values(cls).items():
            assert value.startswith(cls.PREFIX), f"ids.{cls.__name__}.{name} = {value!r} lacks {cls.PREFIX!r}"


def test_no_id_is_used_by_two_names():
    seen = {}
    for cls in feature_classes():
        for name, value in id_values(cls).items():
            assert value not in seen, f"{value!r} is both {seen[value]} and ids.{cls.__name__}.{name}"
            seen[value] = f"ids.{cls.__name__}.{name}"


def test_prefixes_are_distinct():
    prefixes = [cls.PREFIX for cls in feature_classes()]
    assert len(prefixes) == len(set(prefixes)) and len(prefixes) >= 7
