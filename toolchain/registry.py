"""A name -> object registry filled by a decorator; duplicate names are refused."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, *names: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            for name in names:
                if name in self._items:
                    raise ValueError(f"duplicate {self.kind} {name!r}")
                self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T | None:
        return self._items.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())
