#!/usr/bin/env python3
"""The peers for `inspect --no-hash`: parse the PE headers with pefile (fast_load, as
ukify does) or LIEF and print the section table as JSON [[name, file offset, raw size]],
which the harness compares with ukitool's before timing anything.

    pe_sections.py pefile|lief FILE
"""
import json
import sys

engine, path = sys.argv[1], sys.argv[2]
if engine == "pefile":
    import pefile

    pe = pefile.PE(path, fast_load=True)
    secs = [(s.Name.rstrip(b"\0").decode("latin-1"), s.PointerToRawData, s.SizeOfRawData)
            for s in pe.sections]
elif engine == "lief":
    import lief

    pe = lief.PE.parse(path)
    secs = [(s.name, s.pointerto_raw_data, s.sizeof_raw_data) for s in pe.sections]
else:
    sys.exit(f"unknown engine {engine}")
print(json.dumps(secs))
