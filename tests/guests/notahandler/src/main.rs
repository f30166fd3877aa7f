//! `notahandler`: a plain WASI command (a component of the `wasi:cli/command` world),
//! used to check that netlet rejects a component of the wrong world with a clear error.

fn main() {
    println!("I am a command-line program, not a netlet handler");
}
