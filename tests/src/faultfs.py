#!/usr/bin/env python3
"""A FUSE file system of one file, `disk`, that passes reads and writes through to a
backing file, except that any write (or read, with --reads) touching byte FAIL_AT fails
with EIO. A loop device over MOUNT/disk then fails there like a disk with a bad sector:
the tests' fault injection for `ukitool write` (this kernel has no device-mapper and no
nbd, whose error targets would be the usual way).

    faultfs.py BACKING MOUNTPOINT FAIL_AT [--reads]

Runs in the foreground until unmounted (`umount MOUNTPOINT`) or killed. Uses Debian's
python3-fusepy (libfuse2, which mounts directly as root: no fusermount needed).
"""
import errno
import os
import stat
import sys

try:
    import fusepy as fuse  # Debian's python3-fusepy
except ImportError:  # fusepy from PyPI
    import fuse


class FaultFS(fuse.Operations):
    def __init__(self, backing, fail_at, reads):
        self.fd = os.open(backing, os.O_RDWR)
        self.fail_at = fail_at
        self.reads = reads

    def _fails(self, offset, size):
        return offset <= self.fail_at < offset + size

    def getattr(self, path, fh=None):
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}
        if path != "/disk":
            raise fuse.FuseOSError(errno.ENOENT)
        size = os.fstat(self.fd).st_size
        return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": size}

    def readdir(self, path, fh):
        return [".", "..", "disk"]

    def open(self, path, flags):
        if path != "/disk":
            raise fuse.FuseOSError(errno.ENOENT)
        return 0

    def read(self, path, size, offset, fh):
        if self.reads and self._fails(offset, size):
            raise fuse.FuseOSError(errno.EIO)
        return os.pread(self.fd, size, offset)

    def write(self, path, data, offset, fh):
        if self._fails(offset, len(data)):
            raise fuse.FuseOSError(errno.EIO)
        return os.pwrite(self.fd, data, offset)

    def truncate(self, path, length, fh=None):
        raise fuse.FuseOSError(errno.EPERM)

    def flush(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        os.fsync(self.fd)
        return 0


def main():
    backing, mountpoint, fail_at = sys.argv[1], sys.argv[2], int(sys.argv[3], 0)
    reads = "--reads" in sys.argv[4:]
    fuse.FUSE(FaultFS(backing, fail_at, reads), mountpoint, foreground=True,
              nothreads=True, big_writes=True, allow_other=True, max_write=1 << 20)


if __name__ == "__main__":
    main()
