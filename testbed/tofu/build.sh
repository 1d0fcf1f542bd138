#!/usr/bin/env bash
# Build (or reuse) OpenTofu and the hashicorp/local provider for the @drift tests, cached by version.
#
# Why this exists: these machines reach only package registries, so neither tofu's release archives nor the provider
# registry can be downloaded. Both are compiled from their Go modules; the provider is served to tofu from a
# filesystem mirror (unpacked layout) named in a CLI config with no `direct` block, so `tofu init` never goes online
# and a provider missing from the mirror fails init as an unreachable registry would.
#
# Usage: testbed/tofu/build.sh            (idempotent; a warm run only checks versions)
#        eval "$(testbed/tofu/build.sh)"  (stdout is three shell assignments: DV_TOFU, TF_CLI_CONFIG_FILE,
#                                          DV_TOFU_MIRROR; everything else goes to stderr)
# Env:   DV_CACHE_DIR   cache root (default ~/.cache/deploy-verify)
#        DV_MIN_FREE_GB free space required before a cold build (default 3)
#        GO             go binary (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${DV_CACHE_DIR:-$HOME/.cache/deploy-verify}"
tofu_dir="$cache_root/tofu/$TOFU_VERSION"
bin_dir="$tofu_dir/bin"
mirror_dir="$tofu_dir/mirror"
rc_file="$tofu_dir/tofu.rc"
min_free_gb="${DV_MIN_FREE_GB:-3}"

if [[ -n "${GO:-}" ]]; then
  go_bin="$GO"
elif command -v go >/dev/null 2>&1; then
  go_bin="$(command -v go)"
else
  go_bin=/usr/local/go/bin/go
fi
# An older Go must fail loudly instead of trying to download a toolchain (impossible offline, and not pinned here).
export GOTOOLCHAIN=local
# Static binaries: tofu starts the provider as a child process on whatever host runs the suite.
export CGO_ENABLED=0
# Shared with testbed/kube/build.sh: one module and build cache under our root, never the user's ~/go.
export GOMODCACHE="$cache_root/go/mod"
export GOCACHE="$cache_root/go/build"
# The modules are built from the module cache, not from VCS checkouts.
export GOFLAGS="-buildvcs=false"
# `tofu version` must not phone home while we probe the cached binary.
export CHECKPOINT_DISABLE=1

goos="$("$go_bin" env GOOS 2>/dev/null || echo linux)"
goarch="$("$go_bin" env GOARCH 2>/dev/null || echo amd64)"
platform="${goos}_${goarch}"
provider_dir="$mirror_dir/$LOCAL_PROVIDER_ADDRESS/$LOCAL_PROVIDER_VERSION/$platform"
provider_bin="$provider_dir/terraform-provider-local_v$LOCAL_PROVIDER_VERSION"

build_tag=tofu-build
step_width=22
disk_need="OpenTofu's module graph and build cache"
# shellcheck source=../build-steps.sh
source "$here/../build-steps.sh"

check_go() {
  [[ -x "$go_bin" ]] || die "go not found (looked for go on PATH and /usr/local/go/bin/go); install Go >= 1.26.6 or set GO="
}

# A module's `go` line must not be newer than the local Go: with GOTOOLCHAIN=local the build would stop half-way.
check_go_line() { # go.mod path, what
  local want have
  want="$(awk '$1 == "go" {print $2; exit}' "$1")"
  have="$("$go_bin" env GOVERSION)"; have="${have#go}"
  if [[ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" != "$want" ]]; then
    die "$2 needs Go >= $want (its go.mod), this is Go $have; install a newer Go or set GO= (GOTOOLCHAIN=local: no toolchain download)"
  fi
}

# Dir of a downloaded module (`go mod download -json` prints a flat object; jq is not assumed to be installed).
module_dir() { # module@version
  local out dir
  # From the cache dir so a go.mod in the caller's working directory cannot interfere.
  out="$(cd "$tofu_dir" && "$go_bin" mod download -json "$1")" || die "go mod download $1 failed: $out"
  dir="$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -d "$dir" ]] || die "go mod download $1 gave no module directory: $out"
  printf '%s\n' "$dir"
}

# ---------------------------------------------------------------------------------------------------------------
# tofu counts as cached only if it runs and reports exactly the pinned version as a release build (no "-dev").
tofu_cached() {
  [[ -x "$bin_dir/tofu" ]] || return 1
  local got
  # Without the caller's CLI config: a TF_CLI_CONFIG_FILE naming a missing file only adds warnings to the probe.
  # The whole output, then its first line: `| head -n1` could close the pipe early, and with pipefail the SIGPIPE
  # tofu gets would count as "not cached" and trigger a rebuild.
  got="$(cd "$tofu_dir" && env -u TF_CLI_CONFIG_FILE "$bin_dir/tofu" version 2>/dev/null)" || return 1
  [[ "${got%%$'\n'*}" == "OpenTofu ${TOFU_VERSION}" ]]
}
build_tofu() {
  local dir
  dir="$(module_dir "${TOFU_MODULE}@${TOFU_VERSION}")"
  check_go_line "$dir/go.mod" "OpenTofu ${TOFU_VERSION}"
  # Built inside the downloaded module (read-only; nothing is written there): upstream's go.sum, its hcl replace and
  # godebug lines apply exactly as in its release build. -mod=readonly refuses to change any of them.
  # version.dev=no is what upstream's .goreleaser.yaml sets; without it the binary calls itself "v1.12.6-dev".
  (cd "$dir" && "$go_bin" build -mod=readonly -trimpath \
    -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" -o "$bin_dir/.tofu.tmp" ./cmd/tofu)
  mv -f "$bin_dir/.tofu.tmp" "$bin_dir/tofu"   # atomic: an interrupted build never leaves a half binary
}

# ---------------------------------------------------------------------------------------------------------------
# The provider binary carries its module version in the Go build info; it has no --version of its own.
provider_cached() {
  [[ -x "$provider_bin" ]] || return 1
  "$go_bin" version -m "$provider_bin" 2>/dev/null | awk -v m="$LOCAL_PROVIDER_MODULE" -v v="$LOCAL_PROVIDER_MODULE_VERSION" \
    '$1 == "mod" && $2 == m && $3 == v {f=1} END {exit !f}'
}
build_provider() {
  local dir top
  dir="$(module_dir "${LOCAL_PROVIDER_MODULE}@${LOCAL_PROVIDER_MODULE_VERSION}")"
  check_go_line "$dir/go.mod" "terraform-provider-local ${LOCAL_PROVIDER_MODULE_VERSION}"
  # The mirror files this build under LOCAL_PROVIDER_VERSION; a pseudo-version bump that moved past it must be noticed.
  top="$(sed -n 's/^## \([0-9][0-9.]*\).*/\1/p' "$dir/CHANGELOG.md" | head -n1)"
  [[ "$top" == "$LOCAL_PROVIDER_VERSION" ]] \
    || die "terraform-provider-local ${LOCAL_PROVIDER_MODULE_VERSION}'s CHANGELOG tops at '$top', not ${LOCAL_PROVIDER_VERSION}: update LOCAL_PROVIDER_VERSION in $here/versions.env"
  # `go install module@version` (its go.mod has no replace lines) stamps the module version into the build info,
  # which is what provider_cached reads; a build inside the module directory would say "(devel)".
  mkdir -p "$provider_dir" "$tofu_dir/.gobin"
  GOBIN="$tofu_dir/.gobin" "$go_bin" install -trimpath -ldflags "-s -w" \
    "${LOCAL_PROVIDER_MODULE}@${LOCAL_PROVIDER_MODULE_VERSION}"
  mv -f "$tofu_dir/.gobin/terraform-provider-local" "$provider_bin"
  rmdir "$tofu_dir/.gobin"
}

# ---------------------------------------------------------------------------------------------------------------
# CLI config: the mirror only, no `direct` block, so init is offline and anything not mirrored fails init.
rc_text() {
  cat <<EOF
# Generated by testbed/tofu/build.sh; do not edit. Use with TF_CLI_CONFIG_FILE=$rc_file
disable_checkpoint = true

provider_installation {
  filesystem_mirror {
    path    = "$mirror_dir"
    include = ["$LOCAL_PROVIDER_ADDRESS"]
  }
}
EOF
}
write_rc() {
  rc_text >"$rc_file.tmp"
  mv -f "$rc_file.tmp" "$rc_file"
}

# ---------------------------------------------------------------------------------------------------------------
main() {
  check_go
  mkdir -p "$bin_dir" "$mirror_dir"
  # Two concurrent builds (parallel CI jobs, two helpers) would fight over the same temp files.
  exec 9>"$tofu_dir/.build.lock"
  flock 9
  log "cache: $tofu_dir (go caches under $cache_root/go)"
  local total_start
  total_start=$(date +%s)

  if tofu_cached; then
    skip_step tofu "OpenTofu ${TOFU_VERSION}"
  else
    check_disk
    run_step tofu build_tofu
    tofu_cached || die "tofu was built but reports: $(cd "$tofu_dir" && env -u TF_CLI_CONFIG_FILE "$bin_dir/tofu" version 2>&1 | head -n3)"
  fi

  if provider_cached; then
    skip_step "provider local" "${LOCAL_PROVIDER_VERSION} (${LOCAL_PROVIDER_MODULE_VERSION})"
  else
    check_disk
    run_step "provider local" build_provider
    provider_cached || die "the provider was built at $provider_bin but its build info is not ${LOCAL_PROVIDER_MODULE}@${LOCAL_PROVIDER_MODULE_VERSION}"
  fi

  if [[ "$(cat "$rc_file" 2>/dev/null)" == "$(rc_text)" ]]; then
    skip_step "tofu.rc" "$rc_file"
  else
    run_step "tofu.rc" write_rc
  fi

  log "summary (total $(( $(date +%s) - total_start ))s):"
  local t
  for t in "${timings[@]}"; do log "  $t"; done
  log "tofu:     $bin_dir/tofu"
  log "provider: $provider_bin"
  log "config:   $rc_file"
  printf 'DV_TOFU=%q\nTF_CLI_CONFIG_FILE=%q\nDV_TOFU_MIRROR=%q\n' "$bin_dir/tofu" "$rc_file" "$mirror_dir"
}

main "$@"
