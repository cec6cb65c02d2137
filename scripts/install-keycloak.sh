#!/usr/bin/env bash
# Installs Keycloak for the real-IdP tests into $TOOLS/keycloak-$VERSION (idempotent):
# 1. the server zip from Maven Central (org.keycloak:keycloak-quarkus-dist), checked against a pinned SHA-256;
# 2. `kc.sh build` with the options the tests run with (so `start --optimized` skips the ~2 min build);
# 3. a database template: one start creates the master realm and the bootstrap admin (~1–2 min of
#    migrations), then each test run starts from a copy of it in ~25 s.
# Everything binds to 127.0.0.1; the admin is admin/admin, for this loopback test server only.
set -euo pipefail
tools=$1
version=$2
sha256=$3
home="$tools/keycloak-$version"
template="$tools/keycloak-$version-db"
zip="$tools/cache/keycloak-quarkus-dist-$version.zip"
url="https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/$version/keycloak-quarkus-dist-$version.zip"

mkdir -p "$tools/cache"
if [ ! -f "$zip" ] || ! echo "$sha256  $zip" | sha256sum --check --status; then
  echo "downloading Keycloak $version from Maven Central"
  curl -fsSL --retry 3 -o "$zip.part" "$url"
  echo "$sha256  $zip.part" | sha256sum --check --status || { echo "install-keycloak: SHA-256 of $url does not match the pinned one" >&2; exit 1; }
  mv "$zip.part" "$zip"
fi

if [ ! -f "$home/.built" ]; then
  rm -rf "$home" "$home.part"
  mkdir -p "$home.part"
  python3 -m zipfile -e "$zip" "$home.part"
  mv "$home.part/keycloak-$version" "$home"
  rmdir "$home.part"
  chmod +x "$home"/bin/*.sh
  echo "building Keycloak (kc.sh build, a few minutes on 2 cores)"
  "$home/bin/kc.sh" build --db=dev-file --cache=local --health-enabled=false --metrics-enabled=false > "$home/build.log" 2>&1 || { tail -20 "$home/build.log" >&2; exit 1; }
  touch "$home/.built"
fi

if [ ! -f "$template/keycloakdb.mv.db" ]; then
  rm -rf "$template.part"
  mkdir -p "$template.part"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  echo "initializing Keycloak's database template (first start: migrations, master realm, admin user)"
  KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=admin JAVA_OPTS_KC_HEAP="-Xms128m -Xmx768m" \
    "$home/bin/kc.sh" start --optimized --http-enabled=true --http-host=127.0.0.1 --http-port="$port" --hostname-strict=false \
    "--db-url=jdbc:h2:file:$PWD/$template.part/keycloakdb;NON_KEYWORDS=VALUE" > "$template.part/init.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    if curl -fs -o /dev/null "http://127.0.0.1:$port/realms/master"; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then tail -20 "$template.part/init.log" >&2; exit 1; fi
    sleep 1
  done
  curl -fs -o /dev/null "http://127.0.0.1:$port/realms/master" || { kill "$pid"; tail -20 "$template.part/init.log" >&2; exit 1; }
  kill -TERM "$pid"
  wait "$pid" || true
  rm -rf "$template"
  mv "$template.part" "$template"
fi
echo "Keycloak $version ready: $home (database template $template)"
