"""Reading back what W&B and Comet wrote offline, from their own files, as `wandb sync` and
`comet upload` would send it: the tests' independent check of raysweep's trackers."""

from __future__ import annotations

import json
import struct
import zipfile
from collections import defaultdict
from pathlib import Path

from wandb.proto import wandb_internal_pb2

# A .wandb file is a LevelDB-style log: a 7-byte header (":W&B", magic, version), then 32 KiB
# blocks of chunks, each with a 7-byte header (checksum, length, type: 1 full, 2 first, 3 middle,
# 4 last) and a piece of one serialized Record.
BLOCK, CHUNK_HEADER, FULL, LAST = 32768, 7, 1, 4


def wandb_records(path: Path):
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, pieces = 7, b""
    while pos + CHUNK_HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER:   # a block's tail too short for a header is padding
            pos += left
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[pos:pos + CHUNK_HEADER])
        if kind == 0 and length == 0:
            pos += left
            continue
        pieces += data[pos + CHUNK_HEADER:pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            yield record
            pieces = b""


def _items(items) -> dict:
    """A record's items by key (W&B writes a plain key in `key`, or its parts in `nested_key`)."""
    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items}


def wandb_runs(wandb_dir: Path) -> dict[str, dict]:
    """Every offline run under `wandb_dir` by its display name (the trial id): config, history
    rows, exit code, tags, summary and artifacts, merged over the files of a reopened run."""
    runs: dict[str, dict] = defaultdict(lambda: {"config": {}, "history": [], "exit_code": None, "tags": set(),
                                                 "summary": {}, "artifacts": []})
    for path in sorted(Path(wandb_dir).glob("wandb/offline-run-*/run-*.wandb")):
        name = None
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                name = record.run.display_name
                run = runs[name]
                run["id"] = record.run.run_id
                run["tags"] |= set(record.run.tags)
                run["config"].update(_items(record.run.config.update))
            elif kind == "config":
                runs[name]["config"].update(_items(record.config.update))
            elif kind == "history":
                runs[name]["history"].append(_items(record.history.item))
            elif kind == "summary":
                runs[name]["summary"].update(_items(record.summary.update))
            elif kind == "exit":
                runs[name]["exit_code"] = record.exit.exit_code
            elif kind == "artifact":
                runs[name]["artifacts"].append({"name": record.artifact.name, "aliases": set(record.artifact.aliases),
                                                "files": {e.path for e in record.artifact.manifest.contents}})
    return dict(runs)


def comet_experiments(offline_dir: Path) -> dict[str, dict]:
    """Every offline experiment under `offline_dir` by its name (the trial id): parameters,
    metrics by name as (step, value) lists, others, tags and asset file names, merged over the
    zips of a reopened experiment (they share the key)."""
    by_key: dict[str, dict] = defaultdict(lambda: {"params": {}, "metrics": defaultdict(list), "others": {},
                                                   "tags": set(), "assets": set()})
    for path in sorted(Path(offline_dir).glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read("experiment.json"))
            found = by_key[meta["offline_id"]]
            found["tags"] |= set(meta.get("tags") or ())
            for line in archive.read("messages.json").decode().splitlines():
                message = json.loads(line)
                kind, payload = message["type"], message["payload"]
                if kind == "parameter_msg" and payload["param"]["source"] == "manual":
                    found["params"][payload["param"]["paramName"]] = payload["param"]["paramValue"]
                elif kind == "metric_msg" and payload["metric"]["step"] is not None:
                    metric = payload["metric"]
                    found["metrics"][metric["metricName"]].append((metric["step"], metric["metricValue"]))
                elif kind == "log_other":
                    found["others"][payload["key"]] = payload["value"]
                elif kind == "file_upload":
                    found["assets"].add(payload["additional_params"]["fileName"])
    return {found["others"]["Name"]: found for found in by_key.values()}
