#!/usr/bin/env bash
# Build the base image metric-reader-base:bookworm from Debian packages, without any image
# registry: debootstrap a minimal bookworm with Python 3.11 and venv, then `podman import` it.
#
#   tests/image/build-base.sh            # prints the image name when done
#
# The root file system is cached as a tarball in $IMAGE_CACHE_DIR (default
# /var/cache/metric-reader-image), named by a hash of what goes into it (suite, variant,
# packages, mirror, architecture, debootstrap version, RECIPE). Remove the directory to
# rebuild from fresh packages. An imported image carrying the same hash is reused as is.
#
# Exit codes: 0 built or reused; 77 this machine cannot build it (not root, no debootstrap
# or podman), with the reason on stderr; anything else is a failure.
set -euo pipefail

SUITE=bookworm
VARIANT=minbase
PACKAGES=python3,python3-venv,ca-certificates
IMAGE=${BASE_IMAGE:-metric-reader-base:$SUITE}
CACHE_DIR=${IMAGE_CACHE_DIR:-/var/cache/metric-reader-image}
# Bump when the steps below change what ends up in the root file system.
RECIPE=1
KEY_LABEL=org.metric-reader.base-key

cannot() {
    echo "build-base: cannot build $IMAGE here: $*" >&2
    exit 77
}

# The Debian mirror this machine's apt uses for $SUITE (one-line or deb822 sources), else
# deb.debian.org. DEBIAN_MIRROR overrides it.
debian_mirror() {
    local files=()
    [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] && files+=("$f")
    done
    local found=""
    if ((${#files[@]})); then
        found=$(awk -v suite="$SUITE" '
            function has_suite(list,   n, i, parts) {
                n = split(list, parts, /[ \t]+/)
                for (i = 1; i <= n; i++) if (parts[i] == suite) return 1
                return 0
            }
            function flush() {
                if (printed) exit
                if (enabled && types ~ /(^|[ \t])deb([ \t]|$)/ && has_suite(suites) && uris != "") {
                    split(uris, u, /[ \t]+/); print u[1]; printed = 1; exit
                }
                types = uris = suites = ""; enabled = 1
            }
            BEGIN { enabled = 1 }
            FNR == 1 { flush() }
            FILENAME ~ /\.sources$/ {
                if ($0 ~ /^[ \t]*$/) { flush(); next }
                if ($1 == "Enabled:" && $2 == "no") enabled = 0
                if ($1 == "Types:") { $1 = ""; types = $0 }
                if ($1 == "URIs:") { $1 = ""; sub(/^[ \t]+/, ""); uris = $0 }
                if ($1 == "Suites:") { $1 = ""; suites = $0 }
                next
            }
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i; printed = 1; exit }
            }
            END { flush() }
        ' "${files[@]}")
    fi
    echo "${DEBIAN_MIRROR:-${found:-http://deb.debian.org/debian}}"
}

command -v podman >/dev/null 2>&1 || cannot "podman is not installed"

mirror=$(debian_mirror)
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
debootstrap_version=$(dpkg-query -W -f '${Version}' debootstrap 2>/dev/null || echo unknown)
key=$(printf '%s\n' "$SUITE" "$VARIANT" "$PACKAGES" "$mirror" "$arch" "$debootstrap_version" \
    "$RECIPE" | sha256sum | cut -c1-16)

if [[ $(podman image inspect --format "{{ index .Labels \"$KEY_LABEL\" }}" "$IMAGE" \
    2>/dev/null) == "$key" ]]; then
    echo "build-base: $IMAGE is up to date ($KEY_LABEL=$key)" >&2
    echo "$IMAGE"
    exit 0
fi

tarball=$CACHE_DIR/$SUITE-$VARIANT-$key.tar
if [[ ! -f $tarball ]]; then
    ((EUID == 0)) || cannot "debootstrap needs root (or a cached $tarball)"
    command -v debootstrap >/dev/null 2>&1 || cannot "debootstrap is not installed"
    mkdir -p "$CACHE_DIR"
    # One build at a time; a second run waits, then finds the tarball.
    exec 9>"$CACHE_DIR/.lock"
    flock 9
fi
if [[ ! -f $tarball ]]; then
    # Holding the lock: what is left of an interrupted build, and bases of other inputs, go.
    rm -rf --one-file-system "$CACHE_DIR"/rootfs.* "$CACHE_DIR/$SUITE-$VARIANT"-*.tar* 2>/dev/null || true
    rootfs=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
    trap 'rm -rf --one-file-system "$rootfs" "$tarball.part"' EXIT
    echo "build-base: debootstrap $SUITE from $mirror into $rootfs (a few minutes)" >&2
    if ! debootstrap --variant="$VARIANT" --include="$PACKAGES" "$SUITE" "$rootfs" "$mirror" \
        >"$CACHE_DIR/debootstrap.log" 2>&1; then
        tail -n 30 "$CACHE_DIR/debootstrap.log" >&2
        [[ -f $rootfs/debootstrap/debootstrap.log ]] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
        echo "build-base: debootstrap failed (full log: $CACHE_DIR/debootstrap.log)" >&2
        exit 1
    fi
    # Downloaded packages and package lists are not needed in the image.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" --numeric-owner -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf --one-file-system "$rootfs"
    trap - EXIT
fi

echo "build-base: podman import $tarball as $IMAGE" >&2
podman import --quiet --change "LABEL $KEY_LABEL=$key" --change 'CMD ["/bin/bash"]' \
    "$tarball" "$IMAGE" >/dev/null
echo "$IMAGE"
