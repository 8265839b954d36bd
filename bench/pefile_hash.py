#!/usr/bin/env python3
"""The peer for `inspect` with hashes: pefile (ukify's engine) + hashlib, per-section sha256
of the VirtualSize bytes (clamped to the raw data), printed as a JSON list."""
import hashlib
import json
import sys

import pefile

pe = pefile.PE(sys.argv[1], fast_load=True)
data = pe.__data__
out = []
for s in pe.sections:
    n = s.Misc_VirtualSize or s.SizeOfRawData
    n = min(n, s.SizeOfRawData)
    out.append(hashlib.sha256(data[s.PointerToRawData:s.PointerToRawData + n]).hexdigest())
print(json.dumps(out))
