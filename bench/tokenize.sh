#!/usr/bin/env bash
# Tokenize and shard-reader benchmark on the real corpus in ../shared/data/corpus (one source per
# file), with OLMo's GPT-NeoX tokenizer (../shared/data/tokenizers/gpt-neox-olmo.json).
#
# 1. `refinery run` ingests the corpus and tokenizes it into a local dataset; the tokenize step
#    reports its own MB/s and tokens/s (reading Parquet, encoding, writing shards and indexes).
# 2. `cargo bench --bench tokenize` encodes the same texts with the `tokenizers` crate's
#    `encode_batch` and with Refinery's parallel encoder, in the same process, same threads.
# 3. `refinery versions verify` reads every token back with checksums: locally, then from a
#    local S3 server (moto) after tokenizing the same output into a bucket.
#
# Usage: [PROFILE=release|dev] bench/tokenize.sh
set -euo pipefail
. "$(dirname "$0")/setup.sh"
tokenizer="$data/tokenizers/gpt-neox-olmo.json"

write_config() {  # $1 = dataset root
  : > "$work/tok.toml"
  for f in "$data"/corpus/*.jsonl.zst; do
    name="$(basename "$f" .jsonl.zst)"
    printf '[[sources]]\nname = "%s"\npaths = ["%s"]\n\n' "$name" "$f" >> "$work/tok.toml"
  done
  printf '[output]\npath = "%s/out"\n\n[tokenize]\nroot = "%s"\ntokenizer = "%s"\n' \
    "$work" "$1" "$tokenizer" >> "$work/tok.toml"
}

echo "binary: $bin (profile $profile), $(nproc) cores"
echo "== 1. refinery run: ingest, then tokenize into a local dataset"
write_config "$work/tokens"
/usr/bin/time -f '%e %M' -o "$work/time" "$bin" run --quiet "$work/tok.toml" | grep -E '^(Run|Tokenized)'
read -r wall rss_kb < "$work/time"
echo "whole run: ${wall} s, peak RSS $((rss_kb / 1024)) MiB"

echo "== 2. encoding only: tokenizers encode_batch vs refinery, same texts, same process"
cargo bench --locked -q -p pipeline --bench tokenize -- "$work/out" ingest "$tokenizer" 2>/dev/null

echo "== 3. reading tokens back with checksums"
echo "local (first read):"; "$bin" versions verify "$work/tokens"
echo "local (again):";      "$bin" versions verify "$work/tokens"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" > /dev/null 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; rm -rf "$work"' EXIT
export AWS_ENDPOINT="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
until curl -s -o /dev/null "$AWS_ENDPOINT"; do sleep 0.2; done
curl -s -X PUT "$AWS_ENDPOINT/bench" > /dev/null
write_config "s3://bench/tokens"
"$bin" run --quiet "$work/tok.toml" | grep -E '^Tokenized'
echo "S3 (moto on 127.0.0.1, no cache):"; "$bin" versions verify s3://bench/tokens
echo "S3 with a cache folder (first read fills it):"
"$bin" versions verify s3://bench/tokens --cache-dir "$work/cache"
echo "S3 with a cache folder (second read):"
"$bin" versions verify s3://bench/tokens --cache-dir "$work/cache"
