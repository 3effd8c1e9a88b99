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

from pmrl_bench.data.hf_source import hf_media_refs, load_hf_split
from pmrl_bench.data.items import Item, ItemSet
from pmrl_bench.data.sources import check_options
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import register_adapter


@register_adapter("hf")
def hf(split: str, dataset: str, name: str | None = None, revision: str | None = None, data_dir: str | None = None,
       dataset_name: str | None = None, split_names: dict[str, str] | None = None, id_column: str | None = None,
       text_columns: list[str] | str = (), media_columns: dict[str, str] | None = None, media_dir: str | None = None,
       **options: Any) -> ItemSet:
    """A Hugging Face dataset (Hub id or local directory) read through a column mapping."""
    check_options("hf", options)
    source_split = (split_names or {}).get(split, split)
    source = data_dir or dataset
    ds = load_hf_split(source, name, revision, source_split)
    label = dataset_name or dataset.rstrip("/").split("/")[-1]
    text_columns = [text_columns] if isinstance(text_columns, str) else list(text_columns)
    absent = [c for c in [id_column, *text_columns] if c and c not in ds.column_names]
    if absent:
        raise BenchError(f"hf: dataset {source!r} has no column {absent[0]!r} (columns: {', '.join(ds.column_names)})")
    table = ds.select_columns([c for c in [id_column, *text_columns] if c]).to_dict() if (id_column or text_columns) else {}
    ids = [str(v) for v in table[id_column]] if id_column else [str(i) for i in range(len(ds))]
    refs = {m: hf_media_refs(ds, col, m, f"{label}:{source_split}",
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
