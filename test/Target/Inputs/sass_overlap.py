"""What overlaps the in-flight P V in a flash kernel's SASS (cuobjdump -sass
on stdin): the instructions and MUFU.EX2 between wgmma.wait_group 1
(WARPGROUP.DEPBAR.LE gsb0, 0x1) and the next wait_group 0, and the
exponentials' denormal fix-ups (FSETP.GEU ... -126) in the whole kernel."""
import re
import sys

ins = [line.split(";")[0].split("*/")[-1].strip() for line in sys.stdin
       if re.match(r"\s*/\*[0-9a-f]{4}\*/", line)]
fixups = sum(bool(re.search(r"FSETP\.GEU.*-126", s)) for s in ins)
first = next((i for i, s in enumerate(ins) if "DEPBAR.LE gsb0, 0x1" in s), None)
if first is None:
    print(f"no wait_group 1; {fixups} denormal fix-ups")
    sys.exit()
last = next(i for i in range(first, len(ins)) if "DEPBAR.LE gsb0, 0x0" in ins[i])
window = ins[first + 1:last]
exps = sum("MUFU.EX2" in s for s in window)
print(f"{len(window)} instructions and {exps} MUFU.EX2 between the waits; "
      f"{fixups} denormal fix-ups")
