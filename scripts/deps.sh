#!/usr/bin/env bash
# Installs the Debian 12 packages drst needs, only those missing.
#   scripts/deps.sh build   libraries and tools to build drst and run it
#   scripts/deps.sh test    + the independent references the tests compare with
#   scripts/deps.sh bench   + the peers the benchmarks measure against
# Called by the Makefile before every build, so it must be quick when
# nothing is missing (one dpkg-query).
set -eu

build_pkgs="build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
 libjansson-dev libcurl4-openssl-dev librdkafka-dev libpcap-dev liburcu-dev libck-dev
 libmicrohttpd-dev libssl-dev libxxhash-dev libinih-dev libopenblas-dev libopenblas0-serial
 libxgboost-dev gnuplot-nox libcmocka-dev"
test_pkgs="python3 python3-pandas python3-numpy python3-sklearn python3-scipy
 tshark tcptrace kcat python3-confluent-kafka tcpreplay wireshark-common cppcheck
 prometheus iperf3 nftables tcpdump ethtool iproute2"
bench_pkgs="python3-torch hyperfine"

want="$build_pkgs"
case "${1:-build}" in
  build) ;;
  test) want="$want $test_pkgs" ;;
  bench) want="$want $test_pkgs $bench_pkgs" ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "drst: installing Debian packages:$missing" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "drst: need root or sudo to install:$missing" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no, non-interactively.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing
