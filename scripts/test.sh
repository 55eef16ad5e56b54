#!/usr/bin/env bash
# Install archsearch with its test tools, plus the real services the tests use (a PostgreSQL
# server and headless Chromium, from Debian's packages), then run every test, slow ones included.
set -euo pipefail
cd "$(dirname "$0")/.."

# torch==2.13.0 pins the CPU build this project is developed on; on a GPU machine drop the pin.
# The datasets extra (statsmodels) ships the sunspots and CO2 series, so their tests run instead
# of skipping; aeon, a core dependency (the floor's MiniRocket), ships the UCR/UEA sets.
python3 -m pip install --quiet --disable-pip-version-check torch==2.13.0 -e '.[dev,datasets]'

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
{ command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; } \
    || missing+=(postgresql)
if ((${#missing[@]})); then
    echo "installing ${missing[*]} (Debian packages)"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

ruff check archsearch tests benchmarks
# Two pytest-xdist workers: most of a search test's wall time is waiting (a Ray start, worker
# processes importing torch, subprocesses starting), so two tests at a time on 2 cores take less
# than half the time (benchmarks/RESULTS.md). Pass -n 0 to run them one at a time.
python3 -m pytest -q -p no:cacheprovider -n 2 "$@"
