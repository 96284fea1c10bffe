#!/usr/bin/env bash
# Rebuild data/samples/ from scratch out of Debian 12 (bookworm) documentation
# packages. Re-runnable: every generated sub-folder is deleted and recreated;
# build.sh and SOURCES.md themselves are left alone.
#
# Requirements: apt-get (with `apt-get update` done), dpkg, network access to
# the Debian archive, and a Python with warcio + pymupdf (default: the project
# venv at <repo>/.venv).
#
# Environment:
#   PYTHON   python interpreter to use (default: <repo>/.venv/bin/python)
#   DEB_DIR  optional folder used as a cache for the downloaded .deb files
#            (reused on the next run; by default a temporary folder is used)
#
# Selection is deterministic (sorted file lists, fixed size filters and fixed
# strides), so the same package versions give the same set of documents.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/python}"

# Exact versions the corpus was built from (see SOURCES.md).
PACKAGES=(
  "gnucash-docs=4.13-1"
  "dynare-doc=5.3-1"
  "r-cran-sandwich=3.0-2-1"
  "r-cran-zoo=1.8-11-1"
  "r-cran-aer=1.2-10-1"
  "eqonomize-doc=1.5.4-1"
  "debian-handbook=11.20220922"
  "python3.11-doc=3.11.2-6+deb12u9"
  "postgresql-doc-15=15.20-0+deb12u1"
)

"$PYTHON" -c 'import warcio, pymupdf' || {
  echo "error: $PYTHON needs warcio and pymupdf" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dacp-samples.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
DEBS="${DEB_DIR:-$WORK/debs}"
mkdir -p "$DEBS" "$WORK/x"

for spec in "${PACKAGES[@]}"; do
  pkg="${spec%%=*}"
  ver="${spec#*=}"
  # No epochs in these versions: the file is PKG_VERSION_ARCH.deb.
  deb="$(ls "$DEBS/${pkg}_${ver}_"*.deb 2>/dev/null | head -n1 || true)"
  if [[ -z "$deb" ]]; then
    if ! (cd "$DEBS" && apt-get download -q "$spec" >/dev/null 2>"$WORK/apt.err"); then
      echo "warning: $spec not downloadable ($(tail -n1 "$WORK/apt.err")); trying current $pkg" >&2
      (cd "$DEBS" && apt-get download -q "$pkg" >/dev/null)
    fi
    deb="$(ls -t "$DEBS/${pkg}_"*.deb | head -n1)"
  fi
  echo "extracting $(basename "$deb")" >&2
  mkdir -p "$WORK/x/$pkg"
  dpkg -x "$deb" "$WORK/x/$pkg"
done

# Start from scratch (only the generated folders).
for d in finance general crawl jsonl bad; do
  rm -rf "${HERE:?}/$d"
done

"$PYTHON" - "$WORK/x" "$HERE" <<'PYEOF'
import glob
import gzip
import io
import json
import os
import re
import shutil
import sys
import uuid

import pymupdf
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

X, OUT = sys.argv[1], sys.argv[2]


def P(pkg, rel):
    return os.path.join(X, pkg, rel.lstrip("/"))


def size(p):
    return os.path.getsize(p)


def html_files(folder, lo=0, hi=None):
    """Sorted *.html in folder (real files only), filtered by byte size."""
    out = []
    for f in sorted(glob.glob(os.path.join(folder, "*.html"))):
        if os.path.islink(f) or not os.path.isfile(f):
            continue
        s = size(f)
        if s >= lo and (hi is None or s <= hi):
            out.append(f)
    return out


def stem(f):
    return os.path.basename(f)[: -len(".html")]


def ja_ratio(f):
    """Share of kana/kanji among letters in the visible text (some pages of
    the Japanese translations are still untranslated English)."""
    t = open(f, encoding="utf-8").read()
    t = re.sub(r"(?s)<(script|style|pre)[^>]*>.*?</\1>", "", t)
    t = re.sub(r"<[^>]+>", " ", t)
    j = len(re.findall(r"[\u3040-\u30ff\u4e00-\u9fff]", t))
    a = len(re.findall(r"[A-Za-z]", t))
    return j / (j + a + 1)


def is_japanese(f, threshold=0.5):
    return ja_ratio(f) >= threshold


def copy(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)


def mkdir(*parts):
    d = os.path.join(OUT, *parts)
    os.makedirs(d, exist_ok=True)
    return d


def gunzip_to(src_gz, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with gzip.open(src_gz, "rb") as i, open(dst, "wb") as o:
        shutil.copyfileobj(i, o)


log = []  # (dest, origin) for the summary printed at the end

# ---------------------------------------------------------------- GnuCash --
GC = P("gnucash-docs", "/usr/share/doc/gnucash-docs")


def not_fdl(files):
    # The GFDL appendix pages are identical in every book: leave them out.
    return [f for f in files if not stem(f).startswith("fdl")]


d = mkdir("finance", "gnucash", "en")
gc_en_stems = set()
for book in ("guide", "help"):
    # >= 3000 bytes drops navigation-only stubs; every 2nd page.
    for f in not_fdl(html_files(f"{GC}/gnucash-{book}-en", lo=3000))[::2]:
        copy(f, f"{d}/gnucash-{book}-{stem(f)}.html")
        gc_en_stems.add(stem(f))
d = mkdir("finance", "gnucash", "ja")
# Japanese pages whose English counterpart is not in en/ (no cross-language
# pairs), mostly-Japanese text only; every 2nd page.
ja = [f for f in not_fdl(html_files(f"{GC}/gnucash-guide-ja", lo=3000))
      if stem(f) not in gc_en_stems and is_japanese(f)]
for f in ja[::2]:
    copy(f, f"{d}/gnucash-guide-{stem(f)}.html")
# One PDF: gnucash-help-en.pdf (2.6 MB) is the smallest English PDF shipped
# (the guide PDFs are 8-11 MB).
d = mkdir("finance", "gnucash", "pdf")
gunzip_to(f"{GC}/gnucash-help-en.pdf.gz", f"{d}/gnucash-help-en.pdf")

# -------------------------------------------------------------- Economics --
d = mkdir("finance", "economics")
DY = P("dynare-doc", "/usr/share/doc/dynare")
for name in ("guide", "gsa", "dr", "bvar-a-la-sims"):
    gunzip_to(f"{DY}/{name}.pdf.gz", f"{d}/dynare-{name}.pdf")
RLIB = P("r-cran-sandwich", "/usr/lib/R/site-library")
for pdf in sorted(glob.glob(f"{RLIB}/sandwich/doc/*.pdf")):
    copy(pdf, f"{d}/{os.path.basename(pdf)}")  # sandwich*.pdf
RLIB = P("r-cran-zoo", "/usr/lib/R/site-library")
for pdf in sorted(glob.glob(f"{RLIB}/zoo/doc/*.pdf")):
    copy(pdf, f"{d}/{os.path.basename(pdf)}")  # zoo*.pdf
RLIB = P("r-cran-aer", "/usr/lib/R/site-library")
for pdf in sorted(glob.glob(f"{RLIB}/AER/doc/*.pdf")):
    b = os.path.basename(pdf)
    copy(pdf, f"{d}/{b if b.startswith('AER') else 'AER-' + b}")

# -------------------------------------------------------------- Eqonomize --
d = mkdir("finance", "eqonomize")
for f in html_files(P("eqonomize-doc", "/usr/share/doc/eqonomize/html/C")):
    copy(f, f"{d}/eqonomize-{stem(f)}.html")

# -------------------------------------------------------- Debian handbook --
DH = P("debian-handbook", "/usr/share/doc/debian-handbook/html")
dh_sel = {}
d = mkdir("general", "debian-handbook", "en")
allf = html_files(f"{DH}/en-US", lo=4000)
dh_sel["en"] = (allf, allf[::3])
dh_en_stems = {stem(f) for f in allf[::3]}
# ja: mostly-Japanese pages whose English counterpart is not in en/
d_ja = mkdir("general", "debian-handbook", "ja")
# (The Debian 11 ja-JP translation is partial: fully translated pages score
# about 0.3-0.9 because commands/paths stay in ASCII, untranslated ones < 0.1.)
allf = [f for f in html_files(f"{DH}/ja-JP", lo=4000) if is_japanese(f, 0.3)]
dh_sel["ja"] = (allf, [f for f in allf if stem(f) not in dh_en_stems])
for lang, dst in (("en", d), ("ja", d_ja)):
    for f in dh_sel[lang][1]:
        copy(f, f"{dst}/debian-handbook-{stem(f)}.html")

# ----------------------------------------------------------------- Python --
PY = P("python3.11-doc", "/usr/share/doc/python3.11/html")
d = mkdir("general", "python")
for f in html_files(f"{PY}/tutorial"):
    copy(f, f"{d}/python-tutorial-{stem(f)}.html")
py_lib = html_files(f"{PY}/library", lo=15000, hi=70000)
for f in py_lib[0::2]:
    copy(f, f"{d}/python-library-{stem(f)}.html")
py_warc = py_lib[1::4][:30]   # disjoint from the loose slice
py_jsonl = py_lib[3::4]       # disjoint from both

# ------------------------------------------------------------- PostgreSQL --
PG = P("postgresql-doc-15", "/usr/share/doc/postgresql-doc-15/html")
d = mkdir("general", "postgresql")
pg_all = html_files(PG, lo=4000, hi=60000)
pg_loose = pg_all[0::10]
for f in pg_loose:
    copy(f, f"{d}/postgresql-{stem(f)}.html")
pg_warc = pg_all[5::10][:30]

# ------------------------------------------------ Near-duplicates (loose) --
# Copies of three loose pages with one sentence added to the first
# paragraph, saved under a different name.
EDIT = " This paragraph was reviewed again for the local mirror of this page."


def near_dup(candidates, start, dst_fmt):
    """Copy the first candidate (from index start) that has a plain-text
    paragraph (<p> or publican's <div class="para">), adding EDIT after its
    first sentence; save as dst_fmt % stem."""
    for src in candidates[start:]:
        t = open(src, encoding="utf-8").read()
        m = re.search(r'(?:<p>|<div class="para">)([^<]{40,}?[a-z]\.)(?=[\s<])', t)
        if m:
            break
    else:
        raise SystemExit(f"no near-duplicate candidate from index {start}")
    dst = dst_fmt % stem(src)
    with open(dst, "w", encoding="utf-8") as o:
        o.write(t[: m.end(1)] + EDIT + t[m.end(1):])
    log.append((os.path.relpath(dst, OUT), "near-duplicate of " + os.path.basename(src)))
    return src


dh_en = dh_sel["en"][1]
first = near_dup(dh_en, 4, f"{OUT}/general/debian-handbook/en/debian-handbook-%s-mirror.html")
near_dup(dh_en, max(12, dh_en.index(first) + 1),
         f"{OUT}/general/debian-handbook/en/debian-handbook-%s-mirror.html")
near_dup(pg_loose, 20, f"{OUT}/general/postgresql/postgresql-%s-mirror.html")

# ------------------------------------------------------------------- WARC --
d = mkdir("crawl")
WARC_DATE = "2024-05-01T12:00:00Z"


def rid(s):
    return "<urn:uuid:%s>" % uuid.uuid5(uuid.NAMESPACE_URL, s)


def fix_ids(rec, key):
    # Fixed date and name-based record id: the .warc.gz is byte-reproducible.
    rec.rec_headers.replace_header("WARC-Date", WARC_DATE)
    rec.rec_headers.replace_header("WARC-Record-ID", rid(key))


records = []
for f in py_warc:
    records.append(("https://docs.python.org/3.11/library/%s.html" % stem(f), f))
for f in pg_warc:
    records.append(("https://www.postgresql.org/docs/15/%s.html" % stem(f), f))
# Exact duplicates: same bytes under a second URI.
dups = [
    ("https://docs.python.org/3/library/%s.html" % stem(py_warc[0]), py_warc[0]),
    ("https://docs.python.org/3/library/%s.html" % stem(py_warc[7]), py_warc[7]),
    ("https://www.postgresql.org/docs/current/%s.html" % stem(pg_warc[3]), pg_warc[3]),
]
records += dups
with open(f"{d}/general-crawl.warc.gz", "wb") as fh:
    w = WARCWriter(fh, gzip=True)
    info = w.create_warcinfo_record(
        "general-crawl.warc.gz",
        {"software": "dacp data/samples/build.sh (warcio)",
         "description": "Synthetic crawl built from python3.11-doc and postgresql-doc-15 HTML"})
    fix_ids(info, "warcinfo")
    w.write_record(info)
    for uri, f in records:
        body = open(f, "rb").read()
        http = StatusAndHeaders("200 OK", [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ], protocol="HTTP/1.1")
        rec = w.create_warc_record(
            uri, "response", payload=io.BytesIO(body), http_headers=http)
        fix_ids(rec, uri)
        w.write_record(rec)
for uri, f in dups:
    log.append(("crawl/general-crawl.warc.gz", f"exact duplicate {uri}"))

# ------------------------------------------------------------------ JSONL --
d = mkdir("jsonl")
rows = []
for f in py_jsonl:
    src = f"{PY}/_sources/library/{stem(f)}.rst.txt"
    if not os.path.isfile(src):
        continue
    text = open(src, encoding="utf-8").read()
    rows.append({
        "id": "python3.11-doc/library/%s" % stem(f),
        "text": text,
        "source": "/usr/share/doc/python3.11/html/_sources/library/%s.rst.txt" % stem(f),
    })
with open(f"{d}/python-doc-sources.jsonl.gz", "wb") as raw:
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for r in rows:
            gz.write((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))

# -------------------------------------------------------------------- bad --
d = mkdir("bad")
eco = f"{OUT}/finance/economics"
# truncated.pdf: first 40% of a real PDF (xref and page tree are cut off:
# MuPDF "repairs" it into a 0-page document)
src = open(f"{eco}/dynare-guide.pdf", "rb").read()
open(f"{d}/truncated.pdf", "wb").write(src[: int(len(src) * 0.4)])
# encrypted.pdf: a real PDF re-saved with a user password
doc = pymupdf.open(f"{eco}/zoo-design.pdf")
doc.save(f"{d}/encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256,
         user_pw="secret", owner_pw="owner")
doc.close()
# image-only.pdf: first two pages of a real PDF rendered to images, no text
srcdoc = pymupdf.open(f"{eco}/AER.pdf")
out = pymupdf.open()
for pno in range(2):
    page = srcdoc[pno]
    pix = page.get_pixmap(dpi=100)
    newp = out.new_page(width=page.rect.width, height=page.rect.height)
    newp.insert_image(newp.rect, stream=pix.tobytes("png"))
out.set_metadata({})  # no creation date: byte-reproducible
out.save(f"{d}/image-only.pdf", garbage=3, deflate=True, no_new_id=True)
out.close()
srcdoc.close()
# empty.html
open(f"{d}/empty.html", "wb").close()
# binary.html: head (4 KiB) of a real PNG screenshot from gnucash-docs
pngs = sorted(p for p in glob.glob(f"{GC}/gnucash-guide-en/figures/*.png")
              if not os.path.islink(p) and size(p) > 8192)
open(f"{d}/binary.html", "wb").write(open(pngs[0], "rb").read()[:4096])
log.append(("bad/binary.html", "first 4096 bytes of " + os.path.relpath(pngs[0], X)))
# shift_jis.html: a (mostly Japanese) debian-handbook page not in the loose
# ja slice
allf, loose = dh_sel["ja"]
loose = set(loose)
for f in allf:
    if f in loose:
        continue
    t = open(f, encoding="utf-8").read()
    if len(t) < 8000 or not is_japanese(f, 0.5):
        continue
    try:
        t.encode("shift_jis")
    except UnicodeEncodeError:
        continue
    t2 = t.replace('encoding="UTF-8"', 'encoding="Shift_JIS"', 1)
    t2, n = re.subn(r'charset=UTF-8', 'charset=Shift_JIS', t2, count=1, flags=re.I)
    assert n == 1
    open(f"{d}/shift_jis.html", "wb").write(t2.encode("shift_jis"))
    log.append(("bad/shift_jis.html", "Shift_JIS re-encoding of " + os.path.relpath(f, X)))
    break
else:
    raise SystemExit("no Shift_JIS-encodable debian-handbook ja page found")
# near-empty.html
with open(f"{d}/near-empty.html", "w", encoding="utf-8") as o:
    o.write('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<title>Account Reconciliation</title>\n</head>\n<body>\n'
            '<p>This page has moved.</p>\n</body>\n</html>\n')

for dst, what in log:
    print(f"  {dst}: {what}", file=sys.stderr)
PYEOF

echo "done: $(find "$HERE" -type f | wc -l) files, $(du -sh "$HERE" | cut -f1)" >&2
