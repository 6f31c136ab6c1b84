#!/usr/bin/env bash
# Build the environment a Binder launch gets, the way repo2docker builds it:
#   1. a fresh Python 3.11 environment with repo2docker's base packages at their locked versions
#      (tests/binder/base-lock.txt),
#   2. `pip install -r requirements.txt` with the repository as working directory,
#   3. `postBuild`, run from the repository with HOME set to the (scratch) user's home.
# The Makefile is never run, as on Binder. Usage: build_env.sh ENV_DIR HOME_DIR
# The environment is reused while its inputs (the base lock, requirements.txt, postBuild,
# lib/pyproject.toml, this script) are unchanged; delete ENV_DIR to force a fresh build.
set -euo pipefail
env_dir=$1
home_dir=$2
repo=$(git rev-parse --show-toplevel)
cd "$repo"
python=${BINDER_PYTHON:-python3.11}

inputs="tests/binder/base-lock.txt requirements.txt postBuild lib/pyproject.toml tests/binder/build_env.sh"
# shellcheck disable=SC2086
stamp=$(cat $inputs | sha256sum | cut -c1-16)
if [[ -f "$env_dir/.binder-stamp" && "$(cat "$env_dir/.binder-stamp")" == "$stamp" && -d "$home_dir" ]]; then
  echo "binder env: $env_dir is up to date (inputs $stamp)"
  exit 0
fi

start=$SECONDS
rm -rf "$env_dir" "$home_dir"
mkdir -p "$home_dir"
home_dir=$(cd "$home_dir" && pwd)
"$python" -m venv "$env_dir"
env_dir=$(cd "$env_dir" && pwd)
# pip keeps the caller's download cache (HOME is a scratch folder during the build).
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pip}
export HOME=$home_dir
export PATH="$env_dir/bin:$PATH"
echo "binder env: base packages (repo2docker lock)"
python -m pip install --quiet -r tests/binder/base-lock.txt
echo "binder env: pip install -r requirements.txt"
python -m pip install --quiet -r requirements.txt
echo "binder env: postBuild"
bash ./postBuild
echo "$stamp" > "$env_dir/.binder-stamp"
echo "binder env: built in $((SECONDS - start)) s; $(du -sh "$env_dir" | cut -f1)"
