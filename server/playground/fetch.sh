#!/bin/sh
# Fetches the GraphiQL assets served at /playground from the npm registry
# and checks them against SHA256SUMS. Run it from this directory after
# changing a version here, in index.html and in SHA256SUMS (and README.md).
# It needs npm and the network; the build and go generate need neither.
set -eu
graphiql=4.1.2
react=18.2.0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "graphiql@$graphiql" "react@$react" "react-dom@$react" >/dev/null)
for pkg in "graphiql-$graphiql" "react-$react" "react-dom-$react"; do
  mkdir "$tmp/$pkg"
  tar -xzf "$tmp/$pkg.tgz" -C "$tmp/$pkg"
done
cp "$tmp/graphiql-$graphiql/package/graphiql.min.js" "graphiql-$graphiql.min.js"
cp "$tmp/graphiql-$graphiql/package/graphiql.min.css" "graphiql-$graphiql.min.css"
cp "$tmp/graphiql-$graphiql/package/LICENSE" LICENSE.graphiql
cp "$tmp/react-$react/package/umd/react.production.min.js" "react-$react.production.min.js"
cp "$tmp/react-dom-$react/package/umd/react-dom.production.min.js" "react-dom-$react.production.min.js"
cp "$tmp/react-$react/package/LICENSE" LICENSE.react
sha256sum -c SHA256SUMS
