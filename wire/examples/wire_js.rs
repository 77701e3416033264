//! Prints `web/wire.js`: `cargo run -p livescore-wire --example wire_js > web/wire.js`.

fn main() {
    print!("{}", livescore_wire::js::module());
}
