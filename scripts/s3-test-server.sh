#!/usr/bin/env bash
# A throw-away S3-compatible server (s3rver from npm) on loopback for tests
# and benchmarks. s3rver is installed on first use under a cache directory
# outside the repo ($DRST_TEST_CACHE, default ~/.cache/drst-test).
#
#   s3-test-server.sh install            install s3rver if missing (exit 77 if impossible)
#   s3-test-server.sh start DIR [PORT]   start on 127.0.0.1 (random free port unless
#                                        PORT), data in DIR, bucket "drst"; prints the
#                                        endpoint URL; pid in DIR/s3rver.pid
#   s3-test-server.sh stop DIR           stop the server started with DIR
#
# s3rver accepts only the credentials S3RVER/S3RVER and verifies SigV4
# signatures (SignatureDoesNotMatch / InvalidAccessKeyId) unless started
# with --allow-mismatched-signatures, which we never pass.
set -u
cache="${DRST_TEST_CACHE:-$HOME/.cache/drst-test}"
bin="$cache/node_modules/.bin/s3rver"
version="3.7.1"

install() {
  [ -x "$bin" ] && return 0
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "s3-test-server: node/npm not found; cannot install s3rver" >&2
    return 77
  fi
  mkdir -p "$cache"
  if ! npm install --prefix "$cache" --no-audit --no-fund "s3rver@$version" >"$cache/npm.log" 2>&1; then
    echo "s3-test-server: 'npm install s3rver@$version' failed (see $cache/npm.log)" >&2
    return 77
  fi
  [ -x "$bin" ] || { echo "s3-test-server: s3rver missing after install" >&2; return 77; }
}

free_port() {
  "${DRST_PYTHON:-/usr/bin/python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  local dir="$1" port="${2:-}"
  install || exit $?
  mkdir -p "$dir/data"
  [ -n "$port" ] || port=$(free_port)
  "$bin" -d "$dir/data" -a 127.0.0.1 -p "$port" --silent --configure-bucket drst \
    >"$dir/s3rver.log" 2>&1 &
  echo $! >"$dir/s3rver.pid"
  echo "$port" >"$dir/s3rver.port"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "http://127.0.0.1:$port"
      return 0
    fi
    kill -0 "$(cat "$dir/s3rver.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "s3-test-server: s3rver did not start on port $port (log: $dir/s3rver.log)" >&2
  cat "$dir/s3rver.log" >&2
  exit 77
}

stop() {
  local dir="$1"
  [ -f "$dir/s3rver.pid" ] || return 0
  local pid
  pid=$(cat "$dir/s3rver.pid")
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null
  rm -f "$dir/s3rver.pid"
}

case "${1:-}" in
  install) install; exit $? ;;
  start) [ $# -ge 2 ] || { echo "usage: $0 start DIR [PORT]" >&2; exit 2; }; start "$2" "${3:-}" ;;
  stop) [ $# -ge 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
  *) echo "usage: $0 install | start DIR [PORT] | stop DIR" >&2; exit 2 ;;
esac
