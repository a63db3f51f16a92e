fn main() {
    println!("quire-ci {}", env!("CARGO_PKG_VERSION"));
}
