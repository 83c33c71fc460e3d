"""Second readers for lineage outputs, independent of Refinery's own code.

Usage:
  check_lineage.py schema REPORT_JSON SCHEMA_JSON
      Validates a report against the JSON Schema (Draft 2020-12) with `jsonschema`.
  check_lineage.py decode VERSION_DIR TOKENIZER_JSON TRACE_JSON
      Reads the traced document's pieces straight from the shard files with numpy (header
      skipped, dtype from the manifest), checks they are contiguous in the stream, decodes them
      with Python `tokenizers` and prints {"text": ..., "tokens": n} as JSON.
"""

import json
import os
import sys

import numpy as np
from tokenizers import Tokenizer

DTYPES = {2: np.uint16, 4: np.uint32}


def schema(report_path, schema_path):
    import jsonschema

    with open(report_path) as f:
        report = json.load(f)
    with open(schema_path) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    print(json.dumps({"valid": True}))


def decode(version_dir, tokenizer_path, trace_path):
    with open(os.path.join(version_dir, "manifest.json")) as f:
        manifest = json.load(f)
    with open(trace_path) as f:
        trace = json.load(f)
    dtype = DTYPES[manifest["token_bytes"]]
    eod = manifest["tokenizer"]["eod_id"]
    ids = []
    expected_start = None
    for piece in trace["shards"]:
        if expected_start is not None and piece["stream_offset"] != expected_start:
            sys.exit("pieces are not contiguous in the stream")
        expected_start = piece["stream_offset"] + piece["tokens"]
        tokens = np.memmap(os.path.join(version_dir, piece["shard"]), dtype=dtype, mode="r", offset=1024)
        ids.extend(int(t) for t in tokens[piece["offset"] : piece["offset"] + piece["tokens"]])
    if not ids or ids[-1] != eod:
        sys.exit("the document does not end with the end-of-document token")
    text = Tokenizer.from_file(tokenizer_path).decode(ids[:-1], skip_special_tokens=False)
    print(json.dumps({"text": text, "tokens": len(ids)}))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"schema": schema, "decode": decode}[command](*args)
