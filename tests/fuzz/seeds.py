"""seeds.py - what the make_corpus_*.py scripts share: writing a seed corpus.

write_corpus("corpus_x", {"name": b"bytes", ...}) writes each seed as tests/fuzz/corpus_x/
NAME.bin, after removing the .bin files a run of the script wrote before. The inputs the
long fuzz runs added (libFuzzer names them by their SHA-1, with no extension) stay: the
directory is the seeds plus what the fuzzer found."""
import os


def write_corpus(dirname, seeds):
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), dirname)
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.endswith(".bin"):
            os.remove(os.path.join(out, f))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(out, name + ".bin"), "wb") as fh:
            fh.write(data)
    print(f"{len(seeds)} seeds in {out}")
