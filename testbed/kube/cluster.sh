#!/usr/bin/env bash
# Start, stop and locate KWOK clusters made of the real control plane cached by build.sh.
#
#   cluster.sh start NAME [NODES]   create cluster NAME (default 3 fake nodes), print its kubeconfig path (last line)
#   cluster.sh stop NAME            delete cluster NAME and make sure none of its processes are left
#   cluster.sh kubeconfig NAME      print the kubeconfig path of a running cluster
#   cluster.sh list                 list clusters in the state dir
#
# Why kwokctl with --runtime binary: no container engine exists here (a Docker client is installed, which would
# make kwokctl pick the docker runtime), and every binary is given by absolute path so nothing is downloaded.
# Env: DV_CACHE_DIR (binaries, see build.sh), DV_STATE_DIR (default ~/.local/state/deploy-verify; clusters live in
#      $DV_STATE_DIR/kwok), DV_KUBE_AUTOBUILD=0 to fail instead of running build.sh when binaries are missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${DV_CACHE_DIR:-$HOME/.cache/deploy-verify}"
kube_dir="$cache_root/kube/$KUBE_VERSION"
bin_dir="$kube_dir/bin"
state_root="${DV_STATE_DIR:-$HOME/.local/state/deploy-verify}"
# kwokctl keeps every cluster under $KWOK_WORKDIR/clusters/NAME; a private workdir keeps ~/.kwok untouched and
# lets separate checkouts/CI jobs use separate state roots.
export KWOK_WORKDIR="$state_root/kwok"
config_dir="$KWOK_WORKDIR/testbed-config"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '4,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

components=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok kwokctl kubectl)

ensure_binaries() {
  local c missing=0
  for c in "${components[@]}"; do [[ -x "$bin_dir/$c" ]] || missing=1; done
  [[ -f "$kube_dir/crds/cert-manager/cert-manager.io_certificates.yaml" ]] || missing=1
  [[ -f "$kube_dir/crds/argo-workflows/argoproj.io_workflowtemplates.yaml" ]] || missing=1
  [[ -f "$kube_dir/crds/argo-cd/application-crd.yaml" ]] || missing=1
  [[ -f "$kube_dir/crds/argo-rollouts/rollout-crd.yaml" ]] || missing=1
  (( missing )) || return 0
  [[ "${DV_KUBE_AUTOBUILD:-1}" == 1 ]] || die "binaries missing in $bin_dir; run $here/build.sh"
  log "binaries missing in $bin_dir: running build.sh (a cold build takes 15-35 minutes)"
  "$here/build.sh" >/dev/null
}

valid_name() {
  # kwokctl uses the name in paths and as a kubeconfig context; keep it to DNS-label characters.
  [[ "$1" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "invalid cluster name '$1' (use lowercase letters, digits, '-')"
}

cluster_dir() { printf '%s/clusters/%s' "$KWOK_WORKDIR" "$1"; }
kubeconfig_path() { printf '%s/kubeconfig.yaml' "$(cluster_dir "$1")"; }

kubectl_c() { # NAME args...
  local name="$1"; shift
  "$bin_dir/kubectl" --kubeconfig "$(kubeconfig_path "$name")" "$@"
}

is_healthy() {
  [[ -f "$(kubeconfig_path "$1")" ]] && kubectl_c "$1" get --raw /readyz --request-timeout=5s >/dev/null 2>&1
}

# PIDs of processes belonging to a cluster: every component kwokctl starts has the cluster workdir on its command
# line (data dir, kubeconfig, certs). Used to prove that stop leaves nothing behind.
cluster_pids() {
  local dir p
  dir="$(cluster_dir "$1")/"
  for p in /proc/[0-9]*; do
    [[ -r "$p/cmdline" ]] || continue
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$dir"; then
      printf '%s\n' "${p#/proc/}"
    fi
  done
}

write_config() { # NAME -> path of KwokctlConfiguration
  local name="$1"
  mkdir -p "$config_dir"
  # Audit policy: metadata (who, verb, resource, response code; no bodies) for every request. kwokctl copies it to
  # clusters/NAME/audit.yaml and the API server writes clusters/NAME/logs/audit.log. RequestReceived is omitted
  # because it only duplicates the ResponseComplete entry.
  cat >"$config_dir/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
  - RequestReceived
rules:
  - level: Metadata
EOF
  # Every binary is set: any one left unset makes kwokctl try to download it, which fails offline.
  # bindAddress 127.0.0.1: the default 0.0.0.0 would expose the API server (client-cert auth, system:masters)
  # on every interface.
  cat >"$config_dir/$name.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeVersion: ${KUBE_VERSION}
  etcdVersion: ${ETCD_VERSION#v}
  kwokVersion: ${KWOK_VERSION}
  kubeApiserverBinary: ${bin_dir}/kube-apiserver
  kubeControllerManagerBinary: ${bin_dir}/kube-controller-manager
  kubeSchedulerBinary: ${bin_dir}/kube-scheduler
  kubectlBinary: ${bin_dir}/kubectl
  etcdBinary: ${bin_dir}/etcd
  kwokControllerBinary: ${bin_dir}/kwok
  kubeAuditPolicy: ${config_dir}/audit-policy.yaml
# Events live 1h by default; the failure stages' events (BackOff, Failed) are made once, at start-up, and tests
# read them as evidence, so a testbed up longer than an hour would lose them.
componentsPatches:
  - name: kube-apiserver
    extraArgs:
      - key: event-ttl
        value: 24h
EOF
  # Stages: supplying any Stage replaces KWOK's built-in set, so the five defaults go in first, then the testbed's
  # failure stages (CrashLoopBackOff, ImagePullBackOff, not ready, OOMKilled), selected by the label dv.test/fault.
  local stage
  for stage in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
               pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    printf -- '---\n' >>"$config_dir/$name.yaml"
    cat "$kube_dir/kwok-stage/$stage" >>"$config_dir/$name.yaml"
  done
  cat "$here/stages/faults.yaml" >>"$config_dir/$name.yaml"
  printf '%s' "$config_dir/$name.yaml"
}

starting_cluster=""
start_failed_cleanup() {
  local rc=$?
  if (( rc != 0 )) && [[ -n "$starting_cluster" && "${DV_KEEP_FAILED:-0}" != 1 ]]; then
    log "start of $starting_cluster failed (exit $rc); deleting it (set DV_KEEP_FAILED=1 to keep its logs)"
    cmd_stop "$starting_cluster" || true
  fi
}

cmd_start() {
  local name="${1:-}" nodes="${2:-3}"
  [[ -n "$name" ]] || usage
  valid_name "$name"
  [[ "$nodes" =~ ^[0-9]+$ ]] || die "NODES must be a number, got '$nodes'"
  ensure_binaries
  mkdir -p "$KWOK_WORKDIR"
  local t0 t
  t0=$(date +%s)

  if [[ -d "$(cluster_dir "$name")" ]]; then
    if is_healthy "$name"; then
      log "cluster $name is already running; reusing it"
    else
      log "cluster $name exists but is not healthy; recreating it"
      cmd_stop "$name"
    fi
  fi

  # From here on a failure must not leave a half-started control plane behind: tests rely on start either
  # succeeding or cleaning up. DV_KEEP_FAILED=1 keeps it for debugging (logs in clusters/NAME/logs).
  starting_cluster="$name"
  trap start_failed_cleanup EXIT

  if [[ ! -d "$(cluster_dir "$name")" ]]; then
    local config
    config="$(write_config "$name")"
    # kwokctl picks free ports by probing and releasing them; two creates at the same moment could pick the same
    # port. Serialise creation (not the running clusters) with a lock.
    t=$(date +%s)
    (
      flock -w 300 9 || { log "timed out waiting for $KWOK_WORKDIR/.create.lock"; exit 1; }
      # --kubeconfig "": do not add a context to ~/.kube/config. --wait: return only when the API server is ready.
      # 9>&-: the components kwokctl starts outlive it; if they inherited the lock fd they would hold the lock for
      # the cluster's lifetime and every later start would hang.
      "$bin_dir/kwokctl" create cluster --name "$name" --runtime binary -c "$config" \
        --kubeconfig "" --wait 3m >&2 9>&-
    ) 9>"$KWOK_WORKDIR/.create.lock"
    log "control plane up in $(( $(date +%s) - t ))s"
  fi

  t=$(date +%s)
  "$bin_dir/kwokctl" scale node --name "$name" --replicas "$nodes" >&2
  if (( nodes > 0 )); then
    kubectl_c "$name" wait --for=condition=Ready node --all --timeout=120s >/dev/null
  fi
  log "$nodes node(s) Ready in $(( $(date +%s) - t ))s"

  t=$(date +%s)
  # Server-side apply: the CRDs are too large for the last-applied annotation of client-side apply.
  kubectl_c "$name" apply --server-side --force-conflicts -f "$kube_dir/crds/cert-manager/" >/dev/null
  # Argo CD's Application and Argo Rollouts' Rollout: no controller either; tests write their status.
  kubectl_c "$name" apply --server-side --force-conflicts \
    -f "$kube_dir/crds/argo-cd/" -f "$kube_dir/crds/argo-rollouts/" >/dev/null
  kubectl_c "$name" wait --for=condition=Established --timeout=60s \
    crd/certificates.cert-manager.io crd/certificaterequests.cert-manager.io \
    crd/issuers.cert-manager.io crd/clusterissuers.cert-manager.io \
    crd/applications.argoproj.io crd/rollouts.argoproj.io >/dev/null
  # The controller-manager creates the default ServiceAccount shortly after start; pods are rejected until then,
  # which would only slow the first Deployment down.
  local i
  for i in $(seq 1 60); do
    kubectl_c "$name" get serviceaccount default -n default >/dev/null 2>&1 && break
    (( i == 60 )) && die "serviceaccount default/default did not appear within 60s"
    sleep 1
  done
  log "cert-manager, Argo CD and Argo Rollouts CRDs + default ServiceAccount ready in $(( $(date +%s) - t ))s"
  log "audit log: $(cluster_dir "$name")/logs/audit.log"
  trap - EXIT
  log "cluster $name ready in $(( $(date +%s) - t0 ))s"
  kubeconfig_path "$name"
  printf '\n'
}

cmd_stop() {
  local name="${1:-}"
  [[ -n "$name" ]] || usage
  valid_name "$name"
  local t0 pids=()
  t0=$(date +%s)
  mapfile -t pids < <(cluster_pids "$name")
  if [[ -d "$(cluster_dir "$name")" ]]; then
    if [[ -x "$bin_dir/kwokctl" ]]; then
      "$bin_dir/kwokctl" delete cluster --name "$name" >&2 || log "kwokctl delete cluster $name failed; cleaning up by PID"
    fi
  else
    log "cluster $name does not exist"
  fi
  # kwokctl stops components by their pid files; anything that survived (e.g. a component whose pid file was lost
  # after a crash) is ended here, by PID, so that no test leaves a control plane running.
  local pid i left=()
  for i in $(seq 1 20); do
    left=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done
    (( ${#left[@]} == 0 )) && break
    if (( i == 10 )); then
      log "processes of $name still running after kwokctl delete: ${left[*]}; sending TERM"
      kill -TERM "${left[@]}" 2>/dev/null || true
    fi
    sleep 0.5
  done
  if (( ${#left[@]} > 0 )); then
    log "killing leftover processes of $name: ${left[*]}"
    kill -KILL "${left[@]}" 2>/dev/null || true
  fi
  rm -rf "$(cluster_dir "$name")"
  rm -f "$config_dir/$name.yaml"
  log "cluster $name stopped in $(( $(date +%s) - t0 ))s"
}

cmd_kubeconfig() {
  local name="${1:-}"
  [[ -n "$name" ]] || usage
  valid_name "$name"
  [[ -f "$(kubeconfig_path "$name")" ]] || die "cluster $name does not exist (no $(kubeconfig_path "$name"))"
  kubeconfig_path "$name"
  printf '\n'
}

cmd_list() {
  [[ -x "$bin_dir/kwokctl" ]] || die "kwokctl missing in $bin_dir; run $here/build.sh"
  "$bin_dir/kwokctl" get clusters
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  kubeconfig) shift; cmd_kubeconfig "$@" ;;
  list) shift; cmd_list "$@" ;;
  *) usage ;;
esac
