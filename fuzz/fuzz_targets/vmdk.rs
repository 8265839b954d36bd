//! The vmdk reader (core::vdisk::vmdk) over arbitrary bytes: open, list the extents, read
//! the first and last bytes of the virtual disk.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ukitool_fuzz_vdisk(ukitool_core::vdisk::Container::Vmdk, data);
});

fn ukitool_fuzz_vdisk(kind: ukitool_core::vdisk::Container, data: &[u8]) {
    let Ok(disk) = ukitool_core::vdisk::open(kind, data.to_vec()) else {
        return;
    };
    let _ = disk.extents();
    let mut buf = vec![0u8; 64 << 10];
    let size = disk.size();
    let n = (buf.len() as u64).min(size) as usize;
    let _ = disk.read_exact_at(0, &mut buf[..n]);
    let _ = disk.read_exact_at(size - n as u64, &mut buf[..n]);
}
