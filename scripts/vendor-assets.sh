#!/usr/bin/env bash
# Vendor front-end assets (Bootstrap, Chart.js, Swagger UI) from the npm registry
# into trialmgr/static/vendor/. Versions are pinned below; bump them here and
# in trialmgr/static/vendor/VERSIONS.md, then re-run:
#
#     scripts/vendor-assets.sh
#
# Nothing is fetched at run time by the app; these files are served locally.
set -euo pipefail

BOOTSTRAP_VERSION="5.3.9"
CHARTJS_VERSION="4.6.1"
SWAGGER_UI_VERSION="5.35.0"

# Source maps larger than this are not copied.
MAX_MAP_BYTES=$((2 * 1024 * 1024))

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${REPO_ROOT}/trialmgr/static/vendor"

command -v npm >/dev/null || { echo "error: npm not found" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vendor-npm.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "Installing packages into ${WORK} ..."
(
  cd "$WORK"
  printf '{"name":"trialmgr-vendor","version":"0.0.0","private":true}\n' > package.json
  npm install --no-audit --no-fund --ignore-scripts --save-exact --loglevel=error \
    "bootstrap@${BOOTSTRAP_VERSION}" \
    "chart.js@${CHARTJS_VERSION}" \
    "swagger-ui-dist@${SWAGGER_UI_VERSION}"
)
NM="${WORK}/node_modules"

# Sanity check: installed versions match the pins.
check_version() {
  local pkg="$1" want="$2" got
  got="$(node -p "require('${NM}/${pkg}/package.json').version")"
  if [[ "$got" != "$want" ]]; then
    echo "error: ${pkg} installed ${got}, expected ${want}" >&2
    exit 1
  fi
}
check_version bootstrap "$BOOTSTRAP_VERSION"
check_version chart.js "$CHARTJS_VERSION"
check_version swagger-ui-dist "$SWAGGER_UI_VERSION"

# copy SRC DESTDIR -- copy one file, failing loudly if it is missing.
copy() {
  local src="$1" dstdir="$2"
  [[ -f "$src" ]] || { echo "error: missing ${src}" >&2; exit 1; }
  mkdir -p "$dstdir"
  cp "$src" "$dstdir/"
  echo "  ${dstdir#"${REPO_ROOT}/"}/$(basename "$src")"
}

# copy_map SRC DESTDIR -- copy a source map only if it exists and is small enough.
copy_map() {
  local src="$1" dstdir="$2" size
  if [[ ! -f "$src" ]]; then
    echo "  (no map: ${src#"${NM}/"})"
    return 0
  fi
  size="$(stat -c %s "$src")"
  if (( size < MAX_MAP_BYTES )); then
    copy "$src" "$dstdir"
  else
    echo "  (skipped map ${src#"${NM}/"}: ${size} bytes >= ${MAX_MAP_BYTES})"
    rm -f "${dstdir}/$(basename "$src")"
  fi
}

# Start from a clean slate for the three vendored packages only.
rm -rf "${DEST}/bootstrap" "${DEST}/chartjs" "${DEST}/swagger-ui"
mkdir -p "$DEST"

echo "Copying files into ${DEST#"${REPO_ROOT}/"}/ ..."

# Bootstrap
B="${NM}/bootstrap"
copy "${B}/dist/css/bootstrap.min.css"        "${DEST}/bootstrap/css"
copy "${B}/dist/css/bootstrap.min.css.map"    "${DEST}/bootstrap/css"
copy "${B}/dist/js/bootstrap.bundle.min.js"     "${DEST}/bootstrap/js"
copy "${B}/dist/js/bootstrap.bundle.min.js.map" "${DEST}/bootstrap/js"
copy "${B}/LICENSE"                           "${DEST}/bootstrap"

# Chart.js (UMD build; prefer the .min variant if the package ships one)
C="${NM}/chart.js"
if [[ -f "${C}/dist/chart.umd.min.js" ]]; then
  copy "${C}/dist/chart.umd.min.js" "${DEST}/chartjs"
else
  copy "${C}/dist/chart.umd.js" "${DEST}/chartjs"
fi
copy "${C}/LICENSE.md" "${DEST}/chartjs"

# Swagger UI
S="${NM}/swagger-ui-dist"
for f in swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js; do
  copy     "${S}/${f}"     "${DEST}/swagger-ui"
  copy_map "${S}/${f}.map" "${DEST}/swagger-ui"
done
# The bundles' banners point at these third-party license notices.
for f in swagger-ui-bundle.js.LICENSE.txt swagger-ui-standalone-preset.js.LICENSE.txt; do
  copy "${S}/${f}" "${DEST}/swagger-ui"
done
copy "${S}/LICENSE" "${DEST}/swagger-ui"
copy "${S}/NOTICE"  "${DEST}/swagger-ui"

echo "Done: bootstrap ${BOOTSTRAP_VERSION}, chart.js ${CHARTJS_VERSION}, swagger-ui-dist ${SWAGGER_UI_VERSION}."
