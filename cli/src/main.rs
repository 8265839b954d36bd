//! `ukitool`: a thin command line over ukitool-core.

fn main() {
    println!("ukitool {}", env!("CARGO_PKG_VERSION"));
}
