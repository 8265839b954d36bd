//! Hostile input (issue 9): every file ukitool opens may be crafted to crash it.
//!
//! - `mutation_corpus`: a deterministic, structure-aware mutation test (fixed-seed PRNG,
//!   10,000+ cases) over the real signed UKI, shim, an sbsign'ed stub, a doubly signed
//!   (nested) stub and four disks (ukitool-made FAT32, mtools-made FAT16, and GPT disks
//!   holding a ukitool-core XFS volume and a mkfs.xfs one filled from a protofile, with
//!   block, leaf and node directories and remote symlinks). Mutations hit
//!   the fields that matter: section count, sizes, offsets, VirtualSize vs raw size, data
//!   directories, WIN_CERTIFICATE lengths, DER lengths inside the PKCS#7, GPT header fields
//!   and CRCs (recomputed half the time, so the parser gets past the CRC check), FAT BPB
//!   fields, FAT chains and directory entries, the XFS superblock, every inode's fork
//!   fields and first records, directory and block-map headers (the XFS CRCs
//!   recomputed half the time, `hostile::xfs`). Every call must return a value or a typed
//!   error: a panic fails the test, a hang trips the watchdog. Outcomes are counted by
//!   `Error::kind()` (or verify verdict) and printed with the slowest case.
//! - Memory: a counting global allocator (per thread) checks that inspect and verify never
//!   allocate more than 2x the input plus `hostile::alloc::MEM_SLACK`, whatever the headers claim.
//! - Time: constructed worst cases (65535 sections, deeply nested and very many
//!   signatures, FAT cluster-chain and directory cycles, 1024 GPT entries on one ESP)
//!   finish quickly; the times are printed and only a loose "not hung" bound is
//!   asserted.
//! - CLI: a sample of the mutation cases through `ukitool inspect`/`verify`: exit 0, 1 or
//!   2, and for 2 exactly one `ukitool: error:` line, never a panic or a backtrace.
//!
//! Run `cargo test -p ukitool-tests --test robustness -- --nocapture` to see the tables;

use ukitool_tests::hostile::alloc::Counting;

mod disk;
mod mutation;
mod sections;
mod signatures;

#[global_allocator]
static ALLOC: Counting = Counting;
