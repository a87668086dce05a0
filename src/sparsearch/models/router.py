"""Route queries and documents through different module stacks (inference-free SPLADE)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, ClassVar, cast

import torch

from sparsearch.errors import ConfigError, ModelLoadError
from sparsearch.models._base import Module, TokenizerInput, read_json, write_json


def call_module(module: torch.nn.Module, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Call ``module`` with the keyword arguments it declares in ``forward_kwargs``."""
    accepted: frozenset[str] = getattr(module, "forward_kwargs", frozenset())
    return module(features, **{k: v for k, v in kwargs.items() if k in accepted})


def _tokenizing(route: str, module: torch.nn.Module) -> TokenizerInput:
    """``module``, which starts route ``route`` and so must tokenize the texts."""
    if not isinstance(module, TokenizerInput):
        raise ConfigError(
            f"route {route!r} starts with {type(module).__name__}, which does not tokenize texts"
        )
    return module


class Router(Module):
    """Send each batch down one of several module stacks, chosen by ``task``.

    ``Router.for_query_document(query_modules, document_modules)`` is the inference-free SPLADE
    layout: ``encode_query`` uses the query route, ``encode_document`` (and plain ``encode``,
    through ``default_route``) the document route.
    """

    config_keys: ClassVar[list[str]] = ["default_route", "allow_empty_key", "route_mappings"]
    config_file_name: ClassVar[str] = "router_config.json"
    st_type: ClassVar[str] = "sentence_transformers.base.modules.router.Router"
    forward_kwargs: ClassVar[frozenset[str]] = frozenset({"task", "max_active_dims"})
    save_in_root: ClassVar[bool] = True

    def __init__(
        self,
        sub_modules: dict[str, list[torch.nn.Module]],
        default_route: str | None = None,
        allow_empty_key: bool = True,
        route_mappings: dict[tuple[str | None, str | None], str] | None = None,
    ) -> None:
        super().__init__()
        if not sub_modules or any(not mods for mods in sub_modules.values()):
            raise ConfigError("a Router needs at least one route, each with at least one module")
        if default_route is not None and default_route not in sub_modules:
            raise ConfigError(f"default route {default_route!r} is not one of {list(sub_modules)}")
        self.sub_modules = torch.nn.ModuleDict(
            {name: torch.nn.Sequential(*mods) for name, mods in sub_modules.items()}
        )
        if allow_empty_key and default_route is None:
            default_route = next(iter(sub_modules))
        self.default_route = default_route
        self.allow_empty_key = allow_empty_key
        self.route_mappings = dict(route_mappings or {})

    @classmethod
    def for_query_document(
        cls,
        query_modules: list[torch.nn.Module],
        document_modules: list[torch.nn.Module],
        default_route: str | None = "document",
        allow_empty_key: bool = True,
    ) -> Router:
        """A router with a ``query`` and a ``document`` route."""
        return cls(
            {"query": query_modules, "document": document_modules},
            default_route=default_route,
            allow_empty_key=allow_empty_key,
        )

    def route(self, task: str | None) -> str:
        """The route name that ``task`` resolves to."""
        for key in ((task, "text"), (task, None), (None, "text"), (None, None)):
            if key in self.route_mappings:
                return self.route_mappings[key]
        if task is not None and task in self.sub_modules:
            return task
        if task is not None:
            raise ConfigError(f"no route for task {task!r}; routes are {list(self.sub_modules)}")
        if self.default_route is None:
            raise ConfigError(
                f"no task given and no default route; routes are {list(self.sub_modules)}"
            )
        return self.default_route

    def stacks(self) -> dict[str, torch.nn.Sequential]:
        """Each route's module stack, by route name."""
        # __init__ wraps every route in a Sequential; ModuleDict types its items as plain Modules
        return {name: cast(torch.nn.Sequential, mods) for name, mods in self.sub_modules.items()}

    def input_module(self, task: str | None) -> TokenizerInput:
        """The module that tokenizes the texts of ``task``'s route (its first module)."""
        name = self.route(task)
        return _tokenizing(name, self.stacks()[name][0])

    def input_modules(self) -> list[TokenizerInput]:
        """The first (tokenizing) module of every route, in route order."""
        return [_tokenizing(name, mods[0]) for name, mods in self.stacks().items()]

    def preprocess(self, texts: list[str], task: str | None = None) -> dict[str, Any]:
        features = self.input_module(task).preprocess(texts, task=task)
        features["task"] = task
        return features

    def forward(
        self, features: dict[str, Any], task: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        task = task if task is not None else features.get("task")
        for module in self.stacks()[self.route(task)]:
            features = call_module(module, features, task=task, **kwargs)
        return features

    def get_embedding_dimension(self) -> int | None:
        for mods in self.stacks().values():
            dim = getattr(mods[-1], "get_embedding_dimension", lambda: None)()
            if dim is not None:
                return dim
        return None

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> None:
        types: dict[str, str] = {}
        structure: dict[str, list[str]] = {}
        names: dict[int, str] = {}
        for route, mods in self.stacks().items():
            structure[route] = []
            for i, module in enumerate(mods):
                if not isinstance(module, Module):
                    raise ConfigError(
                        f"cannot save route {route!r}: {type(module).__name__} is "
                        f"not a sparsearch module"
                    )
                if id(module) not in names:
                    names[id(module)] = f"{route}_{i}_{type(module).__name__}"
                    types[names[id(module)]] = module.st_type
                    folder = Path(path) / names[id(module)]
                    folder.mkdir(parents=True, exist_ok=True)
                    module.save(folder)
                structure[route].append(names[id(module)])
        params = {
            "default_route": self.default_route,
            "allow_empty_key": self.allow_empty_key,
            "route_mappings": {str(k): v for k, v in self.route_mappings.items()},
        }
        write_json(
            Path(path) / self.config_file_name,
            {"types": types, "structure": structure, "parameters": params},
        )

    @classmethod
    def load(cls, path: str | Path) -> Router:
        from sparsearch.models.loading import module_class

        path = Path(path)
        file = path / cls.config_file_name
        config = read_json(file if file.is_file() else path / "config.json")
        try:
            types, structure = config["types"], config["structure"]
            params = dict(config.get("parameters", {}))
        except (KeyError, TypeError) as err:
            raise ModelLoadError(f"malformed router config in {path}: {err}") from err
        loaded: dict[str, Module] = {}
        for name, st_type in types.items():
            if "/" in name or "\\" in name or name.startswith("."):
                raise ModelLoadError(f"router module name {name!r} is not a plain folder name")
            loaded[name] = module_class(st_type).load(path / name)
        params["route_mappings"] = {
            ast.literal_eval(k): v for k, v in (params.get("route_mappings") or {}).items()
        }
        try:
            routes: dict[str, list[torch.nn.Module]] = {
                route: [loaded[n] for n in names] for route, names in structure.items()
            }
        except KeyError as err:
            raise ModelLoadError(f"router structure names an unknown module {err}") from err
        return cls(routes, **{k: v for k, v in params.items() if k in cls.config_keys})

    def __repr__(self) -> str:
        return torch.nn.Module.__repr__(self)
