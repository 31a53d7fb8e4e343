"""What the fuzzers (fuzz-kernels.py, fuzz-manifest.py, fuzz-session.py)
share: their options, the tools they need, and the loop that runs cases and
keeps findings."""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_parser(doc, name):
    """--cases, --minutes, --seed, --dir (default $TMPDIR/`name`), --build."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--cases", type=int, default=0,
                        help="cases to run (0: until --minutes pass)")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=None,
                        help="first case's seed (default: from the clock); "
                             "case i uses seed + i")
    parser.add_argument("--dir", default=os.path.join(
        os.environ.get("TMPDIR", "/tmp"), name))
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    return parser


def find_tools(args, fuzzer, tools, emulator=True):
    """The build's bin directory and PTX emulator; exits naming the first of
    `tools` (and the emulator, if wanted) that is missing."""
    bin_dir = os.path.join(args.build, "bin")
    emulator_path = os.path.join(args.build, "lib", "libhybrid-cuda-emulator.so")
    needed = [os.path.join(bin_dir, tool) for tool in tools]
    for path in needed + ([emulator_path] if emulator else []):
        if not os.path.exists(path):
            sys.exit(f"{fuzzer}: {path} not found (build first, or pass --build)")
    return bin_dir, emulator_path


def run_cases(args, run_case):
    """Runs run_case(index, seed) -> (ok, text) for --cases cases or
    --minutes; prints a line per case and a summary; 1 if any finding."""
    seed = args.seed if args.seed is not None else int(time.time())
    findings = os.path.join(args.dir, "findings")
    os.makedirs(findings, exist_ok=True)
    deadline = time.time() + 60 * args.minutes
    failures = cases = 0
    while (cases < args.cases) if args.cases else (time.time() < deadline):
        begin = time.time()
        ok, text = run_case(cases, seed + cases)
        print(("ok " if ok else "FINDING ") + text +
              f" [{time.time() - begin:.0f} s]", flush=True)
        failures += not ok
        cases += 1
    print(f"{cases} cases, {failures} findings"
          + (f" (in {findings})" if failures else ""))
    return 1 if failures else 0
