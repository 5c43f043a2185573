#!/usr/bin/env bash
# Vendors MathJax into _static/mathjax from the npm registry, so that every page renders its
# mathematics offline and no page asks a CDN. Rerun to update: it packs the pinned version,
# checks the registry's integrity hash, and copies the TeX-to-CHTML bundle (every TeX extension
# built in, so nothing is loaded on demand), its fonts, the accessibility extensions and the
# licence. Sphinx loads it through `mathjax_path` in _config.yml.
set -euo pipefail
VERSION=3.2.2
INTEGRITY="sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "mathjax@$VERSION" >/dev/null)
got="sha512-$(openssl dgst -sha512 -binary "$tmp/mathjax-$VERSION.tgz" | base64 -w0)"
[ "$got" = "$INTEGRITY" ] || { echo "mathjax-$VERSION.tgz: integrity $got, expected $INTEGRITY" >&2; exit 1; }
tar xzf "$tmp/mathjax-$VERSION.tgz" -C "$tmp"
src="$tmp/package/es5"
dst=_static/mathjax
rm -rf "$dst"
mkdir -p "$dst/output/chtml/fonts" "$dst/a11y"
cp "$src/tex-chtml-full.js" "$dst/"
cp -r "$src/output/chtml/fonts/woff-v2" "$dst/output/chtml/fonts/"
cp "$src/a11y/"*.js "$dst/a11y/"
cp "$tmp/package/LICENSE" "$dst/LICENSE"
echo "MathJax $VERSION (npm, $INTEGRITY): es5/tex-chtml-full.js, its CHTML fonts and a11y extensions." > "$dst/VERSION"
echo "vendored MathJax $VERSION into $dst"
