//! `cerebros-bridge`: drop-in replacement for Thunderline's Python bridge stub.

fn main() {
    println!("cerebros-bridge {}", env!("CARGO_PKG_VERSION"));
}
