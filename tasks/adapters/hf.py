"""Hugging Face `datasets` adapter: a Hub dataset id or a local `datasets` directory plus a column mapping.

Task file example (AudioCaps with audio from a Hub mirror):

    adapter: hf
    adapter_args:
      dataset: jp1924/AudioCaps          # Hub id; or a local directory (save_to_disk output, or parquet/csv/json files)
      name: null                         # the dataset's config, if any
      revision: null                     # a Hub commit/tag, recorded in the cache key
      dataset_name: audiocaps            # name used in the feature cache (default: last part of `dataset`)
      split_names: {train: train, test: test}   # task split -> dataset split (default: the same name)
      id_column: youtube_id              # rows with the same id become one item (captions in row order)
      text_columns: [caption]            # one or more columns; list-valued columns add every element
      media_columns: {audio: audio}      # modality -> column; Audio/Video/Image columns are read with decode=False
      media_dir: null                    # folder for columns that hold file names instead of bytes

`--set data_dir=/path/to/local/copy` reads a local copy instead of the Hub id. Audio and video bytes are
decoded by pmrl_bench.data.media (datasets 5 decodes them only through torchcodec, docs/datasets.md decision 6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pmrl_bench.data.items import BlobRef, Item, ItemSet
from pmrl_bench.data.sources import check_options
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import register_adapter

EXPECTED = ("a Hub dataset id (downloaded once where there is internet; HF_DATASETS_OFFLINE=1 reads the local "
            "cache only) or a local directory written by `save_to_disk`, or holding parquet/csv/json data files")


def _load(source: str, name: str | None, revision: str | None, split: str) -> Any:
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


def _media_refs(ds: Any, column: str, modality: str, label: str, media_dir: Path | None) -> list[Any]:
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


@register_adapter("hf")
def hf(split: str, dataset: str, name: str | None = None, revision: str | None = None, data_dir: str | None = None,
       dataset_name: str | None = None, split_names: dict[str, str] | None = None, id_column: str | None = None,
       text_columns: list[str] | str = (), media_columns: dict[str, str] | None = None, media_dir: str | None = None,
       **options: Any) -> ItemSet:
    """A Hugging Face dataset (Hub id or local directory) read through a column mapping."""
    check_options("hf", options)
    source_split = (split_names or {}).get(split, split)
    source = data_dir or dataset
    ds = _load(source, name, revision, source_split)
    label = dataset_name or dataset.rstrip("/").split("/")[-1]
    text_columns = [text_columns] if isinstance(text_columns, str) else list(text_columns)
    absent = [c for c in [id_column, *text_columns] if c and c not in ds.column_names]
    if absent:
        raise BenchError(f"hf: dataset {source!r} has no column {absent[0]!r} (columns: {', '.join(ds.column_names)})")
    table = ds.select_columns([c for c in [id_column, *text_columns] if c]).to_dict() if (id_column or text_columns) else {}
    ids = [str(v) for v in table[id_column]] if id_column else [str(i) for i in range(len(ds))]
    refs = {m: _media_refs(ds, col, m, f"{label}:{source_split}",
                           Path(media_dir).expanduser() if media_dir else None)
            for m, col in (media_columns or {}).items()}
    grouped: dict[str, dict[str, Any]] = {}
    for row, iid in enumerate(ids):
        entry = grouped.setdefault(iid, {"texts": [], "media": {}})
        for col in text_columns:
            value = table[col][row]
            if isinstance(value, list | tuple):
                entry["texts"].extend(str(v) for v in value)
            elif value is not None:
                entry["texts"].append(str(value))
        for modality, column_refs in refs.items():
            if modality not in entry["media"] and column_refs[row] is not None:
                entry["media"][modality] = column_refs[row]
    items = tuple(Item(iid, split, e["media"], tuple(e["texts"])) for iid, e in grouped.items())
    missing = {m: tuple(i.item_id for i in items if m not in i.media) for m in refs}
    identity = {"hf_dataset": dataset if not data_dir else Path(data_dir).name, "config": str(name),
                "revision": str(revision), "split": source_split, "fingerprint": str(getattr(ds, "_fingerprint", ""))}
    return ItemSet(dataset=label, split=split, items=items, missing={m: v for m, v in missing.items() if v},
                   annotation_identity=identity)
