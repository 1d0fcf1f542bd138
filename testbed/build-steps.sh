# shellcheck shell=bash disable=SC2154  # the variables below are set by the sourcing script
# Shared by testbed/kube/build.sh and testbed/tofu/build.sh (sourced, not run): logging, per-step timings and the
# lazy free-disk check of a cached build. The sourcing script sets, before sourcing:
#   build_tag     the log prefix ("build", "tofu-build")
#   step_width    the width of the step names in the timing summary
#   cache_root, min_free_gb, disk_need    where the cache lives, how many GiB a cold build needs, and for what

log() { printf '[%s] %s\n' "$build_tag" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$build_tag" "$*" >&2; exit 1; }

# Per-step timing, printed as it happens and again as a summary at the end.
declare -a timings=()
run_step() {
  local name="$1"; shift
  local start end
  start=$(date +%s)
  log "step $name: start"
  "$@"
  end=$(date +%s)
  timings+=("$(printf "%-${step_width}s %5ss" "$name" "$((end - start))")")
  log "step $name: done in $((end - start))s"
}
skip_step() {
  timings+=("$(printf "%-${step_width}s %5s" "$1" "cached")")
  log "step $1: cached ($2)"
}

# Free disk is checked once, lazily, right before the first step that must fetch or compile something:
# a warm run on a nearly full disk should still succeed.
disk_checked=0
check_disk() {
  [[ $disk_checked == 1 ]] && return 0
  disk_checked=1
  local probe="$cache_root" avail_kb
  while [[ ! -d "$probe" ]]; do probe="$(dirname "$probe")"; done
  avail_kb=$(df -Pk "$probe" | awk 'NR==2 {print $4}')
  if (( avail_kb < min_free_gb * 1024 * 1024 )); then
    die "not enough free disk under $probe: $((avail_kb / 1024 / 1024)) GiB free, a cold build needs about ${min_free_gb} GiB ($disk_need). Free space or point DV_CACHE_DIR elsewhere."
  fi
  log "disk: $((avail_kb / 1024 / 1024)) GiB free under $probe (need ${min_free_gb} GiB)"
}
