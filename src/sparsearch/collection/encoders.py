"""Loading a collection's encoders and recognising them again: source, hub commit, fingerprint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparsearch.collection.config import ModelSpec
from sparsearch.errors import ModelLoadError, ModelMismatchError


def fingerprint(model: Any) -> str:
    """A hash of a model's class and weights (see :func:`sparsearch.hybrid.cache.model_fingerprint`)."""
    from sparsearch.hybrid.cache import model_fingerprint

    return model_fingerprint(model)


def hub_revision(folder: Path) -> str | None:
    """The commit of a hub snapshot folder (``.../snapshots/<commit>``), else None."""
    return folder.name if folder.parent.name == "snapshots" else None


def model_folder(source: str, revision: str | None, root: Path) -> Path:
    """The folder to load ``source`` from: inside the collection, a local path, or the hub
    snapshot of ``revision`` (the offline cache works the same)."""
    inside = root / source
    if not Path(source).is_absolute() and inside.is_dir():
        return inside
    from sparsearch.models.loading import resolve_model_dir

    folder = resolve_model_dir(source)
    if revision is None or hub_revision(folder) == revision:
        return folder
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, revision=revision))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot find model {source!r} at commit {revision}: {err}") from err


def load_sparse(folder: Path) -> Any:
    from sparsearch.models import SparseEncoder

    return SparseEncoder(folder)


def load_dense(folder: Path) -> Any:
    from sparsearch.hybrid.dense import load_dense_model

    return load_dense_model(folder)


def prepare(model: Any, root: Path, role: str, loader: Any) -> tuple[Any, str, str | None]:
    """(loaded model, source, revision) for ``model`` given to ``Collection.create``: a hub id
    is recorded as given with the commit it resolved to, a local folder by its absolute path,
    and a model object is saved into ``root/models/role``."""
    if isinstance(model, (str, Path)):
        local = Path(model).expanduser()
        if local.is_dir():
            return loader(local), str(local.resolve()), None
        from sparsearch.models.loading import resolve_model_dir

        folder = resolve_model_dir(str(model))
        return loader(folder), str(model), hub_revision(folder)
    source = f"models/{role}"
    model.save(str(root / source))
    return model, source, None


def check_fingerprint(spec: ModelSpec, model: Any, what: str, force: bool) -> None:
    """Refuse a model whose weights differ from the collection's (unless ``force``)."""
    found = fingerprint(model)
    if found != spec.fingerprint and not force:
        raise ModelMismatchError(
            f"the {what} model {spec.source!r} has fingerprint {found[:12]}, but this collection "
            f"was written with {spec.fingerprint[:12]}: its vectors would not match "
            f"(pass force=True to open it anyway)"
        )
