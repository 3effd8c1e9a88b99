"""Reading a Hugging Face `datasets` split without decoding its media: shared by the `hf` adapter and the
dataset adapters that can read a Hub copy (ESC-50). Audio/video/image columns are cast to `decode=False`
and their bytes referenced lazily (`BlobRef`), since datasets 5 decodes them only through torchcodec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pmrl_bench.data.items import BlobRef
from pmrl_bench.errors import BenchError

EXPECTED = ("a Hub dataset id (downloaded once where there is internet; HF_DATASETS_OFFLINE=1 reads the local "
            "cache only) or a local directory written by `save_to_disk`, or holding parquet/csv/json data files")


def load_hf_split(source: str, name: str | None, revision: str | None, split: str) -> Any:
    """The split as a `datasets.Dataset` (memory-mapped Arrow)."""
    import datasets

    local = Path(source).expanduser()
    try:
        if local.is_dir() and ((local / "dataset_dict.json").is_file() or (local / "state.json").is_file()):
            loaded = datasets.load_from_disk(str(local))
            return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        return datasets.load_dataset(str(local) if local.is_dir() else source, name=name, revision=revision, split=split)
    except KeyError:
        raise BenchError(f"hf: dataset {source!r} has no split {split!r}; map the task's split with "
                         f"adapter_args.split_names") from None
    except (FileNotFoundError, ConnectionError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise BenchError(
            f"hf: cannot load dataset {source!r} split {split!r} ({first}). Expected {EXPECTED}. Provide it by "
            f"downloading it once (`hf download --repo-type dataset {source}`) and copying the Hugging Face cache "
            f"here, or by pointing at a local copy with --set data_dir=/path/to/dataset."
        ) from None


def hf_media_refs(ds: Any, column: str, modality: str, label: str, media_dir: Path | None) -> list[Any]:
    """One reference per row (a path or a BlobRef reading the row's bytes lazily), None where absent."""
    import datasets
    import pyarrow.compute as pc

    feature = ds.features.get(column)
    if feature is None:
        raise BenchError(f"hf: no column {column!r} for modality {modality!r} (columns: {', '.join(ds.column_names)})")
    if isinstance(feature, datasets.Audio | datasets.Video | datasets.Image):
        ds = ds.cast_column(column, type(feature)(decode=False))
    column_data = ds.data.column(column).combine_chunks()
    if isinstance(feature, datasets.Value):  # file names
        base = media_dir or Path(".")
        return [(base / p if (base / p).is_file() else None) if p else None for p in column_data.to_pylist()]
    paths = column_data.field("path").to_pylist()
    has_bytes = column_data.field("bytes").is_valid().to_pylist()
    sizes = pc.binary_length(column_data.field("bytes")).to_pylist()
    refs: list[Any] = []
    single = ds.select_columns([column])
    for row, (path, present, size) in enumerate(zip(paths, has_bytes, sizes, strict=True)):
        if present:
            refs.append(BlobRef(name=f"{label}[{row}]/{Path(path or '').name or column}",
                                read=lambda r=row: single[r][column]["bytes"], size=size))
        elif path and Path(path).is_file():
            refs.append(Path(path))
        elif path and media_dir is not None and (media_dir / path).is_file():
            refs.append(media_dir / path)
        else:
            refs.append(None)
    return refs
