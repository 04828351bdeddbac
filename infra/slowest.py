"""Reads `cargo test` output on stdin, passes it through, and prints at the end how long each
test binary took, slowest first, with the tests that libtest reported as running for over 60 s.

Usage: cargo test ... 2>&1 | python3 infra/slowest.py [N]
"""
import re
import sys

top = int(sys.argv[1]) if len(sys.argv) > 1 else 10
running = re.compile(r"^\s+Running (\S+) \(")
doc = re.compile(r"^\s+Doc-tests (\S+)")
result = re.compile(r"^test result: (\w+)\. (\d+) passed; (\d+) failed.*finished in ([\d.]+)s")
long = re.compile(r"^test (\S+) has been running for over (\d+) seconds")
current, times, slow = None, [], []
for line in sys.stdin:
    sys.stdout.write(line)
    sys.stdout.flush()
    if m := running.match(line):
        current = m.group(1)
    elif m := doc.match(line):
        current = "doc-tests " + m.group(1)
    elif (m := result.match(line)) and current:
        times.append((float(m.group(4)), current, int(m.group(2)), m.group(1)))
        current = None
    elif m := long.match(line):
        slow.append(m.group(1))
times.sort(reverse=True)
print("\n==> slowest test binaries (wall time; tests inside one binary run in parallel)")
for secs, name, passed, outcome in times[:top]:
    print("%8.1f s  %-48s %3d passed  %s" % (secs, name, passed, outcome))
print("%8.1f s  in all, %d binaries" % (sum(t[0] for t in times), len(times)))
if slow:
    print("==> tests that ran for over 60 s: " + ", ".join(dict.fromkeys(slow)))
