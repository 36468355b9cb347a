#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the test fixtures (run from anywhere; idempotent).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
corpus="$root/fuzz/corpus"
mkdir -p "$corpus/plan_parse" "$corpus/manifests" "$corpus/translate"
seed() { # target file...
    local target="$1"; shift
    for f in "$@"; do
        # Named by content, so that re-seeding adds nothing twice.
        cp "$f" "$corpus/$target/seed-$(sha1sum "$f" | cut -c1-16)"
    done
}
mapfile -t plans < <(find "$root/plans" "$root/tests/fixtures" -name '*.toml' -size -64k)
mapfile -t yamls < <(find "$root/examples/howto-k8s-http2" "$root/tests/fixtures" \
    \( -name '*.yaml' -o -name '*.yml' \) -size -64k)
seed plan_parse "${plans[@]}"
seed manifests "${yamls[@]}"
seed translate "${yamls[@]}"
for t in plan_parse manifests translate; do
    echo "$t: $(ls "$corpus/$t" | wc -l) inputs in fuzz/corpus/$t"
done
