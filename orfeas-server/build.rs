//! Rebuilds the server when the embedded Batch Studio files change (new files included).

fn main() {
    println!("cargo:rerun-if-changed=static");
}
