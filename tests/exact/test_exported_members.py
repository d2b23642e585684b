import exact


def test_all_lists_every_public_name_sorted() -> None:
    public = sorted((name for name in vars(exact) if not name.startswith("_")), key=str.casefold)
    public = [name for name in public if name not in {"annotations"} and not _is_module(name)]
    assert sorted(exact.__all__, key=str.casefold) == public


def _is_module(name: str) -> bool:
    return type(getattr(exact, name)).__name__ == "module"
