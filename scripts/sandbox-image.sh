#!/usr/bin/env bash
# Build agentd's default sandbox image offline: debootstrap a minimal Debian from the configured apt
# mirror, add the language runtimes, create an unprivileged user, `docker import` it. No image registry
# is needed, only a Debian mirror (the machine's apt sources).
#
#   scripts/sandbox-image.sh build [--tag agentd-sandbox:latest] [--force] [--no-r] [--mirror URL] [--suite bookworm]
#   scripts/sandbox-image.sh status [--tag ...]    exit 0 when the image exists
#
# Idempotent: skips when the tag exists (unless --force); the finished rootfs is cached as a tarball in
# .cache/sandbox-image/ so a rebuild after `docker rmi` (or on a fresh engine) only re-imports.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${AGENTD_SANDBOX_CACHE:-$ROOT/.cache/sandbox-image}"
TAG="agentd-sandbox:latest"
FORCE=0
WITH_R=1
SUITE=bookworm
MIRROR="${SANDBOX_MIRROR:-}"
# The unprivileged user code runs as (uid/gid 1000); the plugin also forces it with `User`.
SB_UID=1000

cmd="${1:-}"; shift || true
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tag) TAG="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    --no-r) WITH_R=0; shift ;;
    --mirror) MIRROR="$2"; shift 2 ;;
    --suite) SUITE="$2"; shift 2 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

step() { printf '[sandbox-image %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Run a command with its full output in $LOG and only the lines matching a pattern on the terminal
# (progress without the noise); returns the command's own exit status.
logged() {
  local pattern="$1"; shift
  set +e
  "$@" 2>&1 | tee -a "$LOG" | grep --line-buffered -E "$pattern" | sed -u 's/^/  /'
  local rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}
die() { echo "sandbox-image: $*" >&2; exit 1; }

image_exists() { docker image inspect "$TAG" >/dev/null 2>&1; }

default_mirror() {
  # First `URIs:` of the deb822 sources, else the first `deb` line of sources.list, else Debian's CDN.
  local m=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    m="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [[ -z "$m" && -f /etc/apt/sources.list ]]; then
    m="$(awk '$1=="deb" && $2 !~ /^\[/ {print $2; exit} $1=="deb" {print $3; exit}' /etc/apt/sources.list)"
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

packages() {
  # python3/nodejs/bash are the core languages; r-base-core is large (~40 MB + X/Tcl libs) but optional.
  local p="python3 nodejs ca-certificates"
  [[ $WITH_R == 1 ]] && p="$p r-base-core"
  echo "$p"
}

build_rootfs() {
  local tarball="$1" dir
  command -v debootstrap >/dev/null || die "debootstrap not installed (apt-get install debootstrap)"
  [[ "$(id -u)" == 0 ]] || die "building the rootfs needs root (debootstrap, chroot)"
  dir="$(mktemp -d /tmp/agentd-rootfs.XXXXXX)"
  # Always unmount and delete the scratch tree, whatever step fails.
  trap "umount '$dir/proc' 2>/dev/null || true; rm -rf '$dir'" EXIT
  mkdir -p "$CACHE/debs"
  LOG="$CACHE/build.log"; : >"$LOG"
  step "debootstrap $SUITE (minbase) from $MIRROR into $dir (full log: $LOG)"
  logged '^I: (Retrieving Packages|Checking component|Installing core|Unpacking the base|Configuring the base|Base system installed)' \
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" "$SUITE" "$dir" "$MIRROR" \
    || die "debootstrap failed; see $LOG"
  mount -t proc proc "$dir/proc"
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  step "apt-get install $(packages)"
  logged '^(Get|Hit|Reading package)' chroot "$dir" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get -q update \
    || die "apt-get update failed; see $LOG"
  logged '^(Need to get|After this|Setting up (python3|nodejs|r-base-core|ca-cert))' \
    chroot "$dir" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C \
    apt-get -q -y --no-install-recommends -o Dpkg::Use-Pty=0 install $(packages) \
    || die "apt-get install failed; see $LOG"
  step "creating user sandbox ($SB_UID) and /workspace"
  chroot "$dir" groupadd -g "$SB_UID" sandbox
  chroot "$dir" useradd -u "$SB_UID" -g "$SB_UID" -M -d /workspace -s /bin/bash sandbox
  mkdir -p "$dir/workspace"; chown "$SB_UID:$SB_UID" "$dir/workspace"; chmod 0755 "$dir/workspace"
  step "trimming caches, docs and locales"
  chroot "$dir" apt-get clean
  umount "$dir/proc"
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* \
    "$dir"/usr/share/info/* "$dir"/var/log/* "$dir"/tmp/* "$dir"/etc/resolv.conf
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
  : >"$dir/etc/resolv.conf"
  step "packing rootfs ($(du -sh "$dir" | cut -f1)) into $tarball"
  tar --numeric-owner -C "$dir" -czf "$tarball.part" .
  mv "$tarball.part" "$tarball"
  rm -rf "$dir"; trap - EXIT
}

build() {
  docker info >/dev/null 2>&1 || die "no Docker engine reachable (try scripts/dockerd.sh start)"
  if image_exists && [[ $FORCE == 0 ]]; then step "$TAG already exists (use --force to rebuild)"; return 0; fi
  MIRROR="${MIRROR:-$(default_mirror)}"
  local variant; variant="$SUITE-$([[ $WITH_R == 1 ]] && echo with-r || echo no-r)"
  local tarball="$CACHE/rootfs-$variant.tar.gz"
  mkdir -p "$CACHE"
  local t0=$SECONDS
  if [[ -f "$tarball" && $FORCE == 0 ]]; then
    step "using cached rootfs $tarball"
  else
    build_rootfs "$tarball"
  fi
  step "docker import as $TAG"
  docker import \
    --change 'USER 1000:1000' \
    --change 'WORKDIR /workspace' \
    --change 'ENV HOME=/workspace LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'LABEL org.agentd.sandbox.image=1' \
    --change "LABEL org.agentd.sandbox.variant=$variant" \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$TAG" >/dev/null
  step "done in $((SECONDS - t0))s: $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
  docker run --rm --network none "$TAG" sh -c 'echo "  python: $(python3 --version 2>&1)"; echo "  node: $(node --version)"; command -v Rscript >/dev/null && echo "  R: $(Rscript --version 2>&1 | head -1)" || echo "  R: not included"'
}

case "$cmd" in
  build) build ;;
  status) if image_exists; then echo "$TAG present"; else echo "$TAG missing"; exit 1; fi ;;
  *) echo "usage: $0 build|status [--tag T] [--force] [--no-r] [--mirror URL] [--suite S]" >&2; exit 2 ;;
esac
